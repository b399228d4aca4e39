package check

import (
	"crypto/x509"
	"encoding/asn1"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

var (
	oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidSRVName        = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 7} // RFC 4985
	oidXMPPAddr       = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 5} // RFC 6120 13.7.1.4
)

// checkNames wants the certificate to name o.Name: as a DNS name or IP
// address, or for XMPP by the rules of RFC 6120 13.7.2.1.
func checkNames(r *Report, o Options, leaf *x509.Certificate) {
	if o.StartTLS == XMPP || o.StartTLS == XMPPServer {
		checkXMPPNames(r, o, leaf)
		return
	}
	if err := leaf.VerifyHostname(o.Name); err != nil {
		r.add(Fail, "name", "certificate does not name %s (it names %s)", o.Name, listNames(leaf))
		return
	}
	r.add(OK, "name", "certificate names %s", o.Name)
}

func listNames(c *x509.Certificate) string {
	var n []string
	n = append(n, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		n = append(n, ip.String())
	}
	if len(n) == 0 {
		return "no DNS name or IP address"
	}
	return strings.Join(n, ", ")
}

// checkXMPPNames applies RFC 6120 13.7.2.1 for the XMPP service domain
// o.Name: the certificate must carry it as a DNS-ID (wildcards allowed),
// an SRV-ID for the service (_xmpp-client or _xmpp-server, RFC 6120
// 13.7.1.2.1 and RFC 7673) or an XmppAddr. An SRV-ID SHOULD be there
// (13.7.1.2.1): its absence warns.
func checkXMPPNames(r *Report, o Options, leaf *x509.Certificate) {
	service := "_xmpp-client."
	if o.StartTLS == XMPPServer {
		service = "_xmpp-server."
	}
	srvIDs, xmppAddrs := otherNames(leaf)
	want := strings.ToLower(o.Name)
	var matched []string
	hasSRV := false
	for _, s := range srvIDs {
		if strings.EqualFold(s, service+want) {
			hasSRV = true
			matched = append(matched, "SRV-ID "+s)
		}
	}
	if leaf.VerifyHostname(o.Name) == nil {
		matched = append(matched, "DNS-ID "+o.Name)
	}
	for _, a := range xmppAddrs {
		if strings.EqualFold(a, want) {
			matched = append(matched, "XmppAddr "+a)
		}
	}
	switch {
	case len(matched) == 0:
		r.add(Fail, "name", "certificate does not name the XMPP domain %s as DNS-ID, SRV-ID %s%s or XmppAddr (it names %s)", o.Name, service, want, listNames(leaf))
	case !hasSRV:
		r.add(Warn, "name", "certificate names %s (%s) but has no SRV-ID %s%s, which RFC 6120 13.7.1.2.1 says it should", o.Name, strings.Join(matched, ", "), service, want)
	default:
		r.add(OK, "name", "certificate names the XMPP domain %s: %s", o.Name, strings.Join(matched, ", "))
	}
}

// otherNames returns the SRVName and XmppAddr otherNames of c's
// subjectAltName; Go's x509 leaves otherNames out. A malformed extension
// yields what was read before the damage.
func otherNames(c *x509.Certificate) (srv, xmpp []string) {
	for _, e := range c.Extensions {
		if !e.Id.Equal(oidSubjectAltName) {
			continue
		}
		s := cryptobyte.String(e.Value)
		var seq cryptobyte.String
		if !s.ReadASN1(&seq, cbasn1.SEQUENCE) {
			return
		}
		for !seq.Empty() {
			var gn cryptobyte.String
			var tag cbasn1.Tag
			if !seq.ReadAnyASN1(&gn, &tag) {
				return
			}
			if tag != cbasn1.Tag(0).ContextSpecific().Constructed() {
				continue
			}
			var oid asn1.ObjectIdentifier
			var val, str cryptobyte.String
			var strTag cbasn1.Tag
			if !gn.ReadASN1ObjectIdentifier(&oid) ||
				!gn.ReadASN1(&val, cbasn1.Tag(0).ContextSpecific().Constructed()) ||
				!val.ReadAnyASN1(&str, &strTag) {
				continue
			}
			switch {
			case oid.Equal(oidSRVName) && strTag == cbasn1.IA5String:
				srv = append(srv, string(str))
			case oid.Equal(oidXMPPAddr) && strTag == cbasn1.UTF8String:
				xmpp = append(xmpp, string(str))
			}
		}
	}
	return
}
