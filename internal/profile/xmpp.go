package profile

import (
	"crypto/x509"
	"encoding/asn1"
	"slices"
	"strings"

	"signet/internal/errs"
)

// Object identifiers of the otherName forms XMPP uses.
var (
	OIDSRVName  = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 7} // id-on-dnsSRV, RFC 4985
	OIDXMPPAddr = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 5} // id-on-xmppAddr, RFC 6120 13.7.1.4
)

// xmpp is the XMPP server profile of RFC 6120 13.7.1.2. One certificate
// serves both directions of server-to-server links, so it has serverAuth
// and clientAuth. For every XMPP service domain the SAN carries the
// DNS-ID, the SRV-IDs _xmpp-client.DOMAIN and _xmpp-server.DOMAIN
// (RFC 4985, RFC 7673) and an XmppAddr; host names (xmpp1.example.org) are
// DNS-IDs only.
//
// Go's x509 cannot write otherName, so the SAN extension is built here and
// put in ExtraExtensions. crypto/x509 documents that ExtraExtensions
// override the extension it would build from DNSNames etc., so the template
// keeps DNSNames and IPAddresses filled in (exactly what x509.ParseCertificate
// gives back from the finished certificate) without a second SAN appearing.
func xmpp(t *x509.Certificate, l Leaf) error {
	if len(l.DNSNames) == 0 {
		return errs.New(errs.Rejected, "an xmpp certificate needs at least one DNS name (the XMPP domain)")
	}
	if err := needHostNames(XMPP, l); err != nil {
		return err
	}
	domains := l.XMPPDomains
	if len(domains) == 0 {
		domains = l.DNSNames[:1]
	}
	var others []otherName
	for _, d := range domains {
		if !slices.Contains(l.DNSNames, d) {
			// Policy checks DNSNames; a domain outside them would dodge it.
			return errs.New(errs.Rejected, "xmpp domain %q must also be one of the certificate's DNS names", d)
		}
		if strings.HasPrefix(d, "*") {
			return errs.New(errs.Rejected, "xmpp domain %q cannot be a wildcard (SRV-IDs name one service domain)", d)
		}
		others = append(others,
			otherName{OIDSRVName, asn1.TagIA5String, "_xmpp-client." + d},
			otherName{OIDSRVName, asn1.TagIA5String, "_xmpp-server." + d},
		)
	}
	for _, d := range domains {
		others = append(others, otherName{OIDXMPPAddr, asn1.TagUTF8String, d})
	}
	san, err := marshalSAN(l.DNSNames, l.IPAddresses, nil, others)
	if err != nil {
		return err
	}
	t.ExtraExtensions = append(t.ExtraExtensions, san)
	// RFC 5280 4.2.1.6: the SAN is critical exactly when the subject is empty.
	t.ExtraExtensions[len(t.ExtraExtensions)-1].Critical = t.Subject.CommonName == ""
	t.KeyUsage = keyUsage(l.PublicKey, Server)
	t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	return nil
}
