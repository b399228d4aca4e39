// Package profile owns the certificate profiles: for each purpose (TLS
// server and client, XMPP, VPN, libvirt, SSH) it turns a request that policy
// has already accepted into an x509 template encoding that purpose's standard.
// It never signs; package ca does.
package profile

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"signet/internal/errs"
)

// Purpose names what an authority's certificates are for. Each authority
// has exactly one purpose; it selects the profile below.
type Purpose string

const (
	TLSServer Purpose = "tls-server"
	TLSClient Purpose = "tls-client"
	XMPP      Purpose = "xmpp"
	VPN       Purpose = "vpn"
	Libvirt   Purpose = "libvirt"
	SSHHost   Purpose = "ssh-host"
	SSHUser   Purpose = "ssh-user"
)

// Purposes lists every purpose in the order help texts show them.
var Purposes = []Purpose{TLSServer, TLSClient, XMPP, VPN, Libvirt, SSHHost, SSHUser}

// ParsePurpose accepts exactly the purpose names above.
func ParsePurpose(s string) (Purpose, error) {
	for _, p := range Purposes {
		if string(p) == s {
			return p, nil
		}
	}
	names := make([]string, len(Purposes))
	for i, p := range Purposes {
		names[i] = string(p)
	}
	return "", errs.New(errs.Malformed, "unknown purpose %q (valid: %s)", s, strings.Join(names, ", "))
}

// IsSSH reports whether the purpose issues SSH certificates rather than X.509.
func (p Purpose) IsSSH() bool { return p == SSHHost || p == SSHUser }

// Usage is the role of a leaf within its purpose: the TLS server or client side.
type Usage string

const (
	Server Usage = "server"
	Client Usage = "client"
)

// Usages lists the leaf usages a purpose issues; the first is the default.
// SSH purposes have none (they issue no X.509 leaves).
func (p Purpose) Usages() []Usage {
	switch p {
	case TLSServer, XMPP:
		return []Usage{Server}
	case TLSClient:
		return []Usage{Client}
	case VPN, Libvirt:
		return []Usage{Server, Client}
	}
	return nil
}

// Leaf is what a request becomes after policy has accepted it.
type Leaf struct {
	Usage          Usage  // "" means the purpose's default (first of Usages())
	CommonName     string // optional; default: first DNS name, else first email, else first IP
	DNSNames       []string
	IPAddresses    []net.IP
	EmailAddresses []string
	XMPPDomains    []string // xmpp only: service domains that get SRV-IDs; default: the first DNS name
	PublicKey      crypto.PublicKey
	NotBefore      time.Time
	NotAfter       time.Time
	SerialNumber   *big.Int
	Revocation     Pointers // where relying parties check its status and find its issuer
}

// Pointers are the URLs a certificate carries so that relying parties can
// check it: the CRL distribution point of its shard (RFC 5280 4.2.1.13)
// and the AIA's OCSP responder and issuer certificate (4.2.2.1). Empty
// fields are left out.
type Pointers struct {
	CRL       string
	OCSP      string
	IssuerURL string
}

// CheckBaseURL accepts "" (the default) or an absolute http(s) URL without
// a trailing slash, query, fragment or user information: it is the prefix
// of every URL in Pointers. It is the one check of base URLs, for an
// authority's and for the configuration's.
func CheckBaseURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" ||
		strings.HasSuffix(s, "/") || u.User != nil {
		return errs.New(errs.Malformed, "base URL %q: want http://host[:port][/path] without a trailing slash", s)
	}
	return nil
}

func (p Pointers) apply(t *x509.Certificate) {
	if p.CRL != "" {
		t.CRLDistributionPoints = []string{p.CRL}
	}
	if p.OCSP != "" {
		t.OCSPServer = []string{p.OCSP}
	}
	if p.IssuerURL != "" {
		t.IssuingCertificateURL = []string{p.IssuerURL}
	}
}

// LeafTemplate returns the template for an end-entity certificate of
// purpose p. The template carries a SubjectKeyId computed from the key
// (RFC 7093 method 1); the AuthorityKeyId comes from the issuer when ca signs.
// Errors are Malformed for inconsistent input and Rejected when the profile
// refuses a well-formed request.
func LeafTemplate(p Purpose, l Leaf) (*x509.Certificate, error) {
	if p.IsSSH() {
		return nil, errs.New(errs.Rejected, "SSH authorities issue SSH certificates, not X.509")
	}
	if _, err := ParsePurpose(string(p)); err != nil {
		return nil, err
	}
	if l.Usage == "" {
		l.Usage = p.Usages()[0]
	}
	if !slices.Contains(p.Usages(), l.Usage) {
		return nil, errs.New(errs.Rejected, "purpose %s does not issue %q certificates (it issues %v)", p, l.Usage, p.Usages())
	}
	if len(l.XMPPDomains) > 0 && p != XMPP {
		return nil, errs.New(errs.Rejected, "only xmpp certificates carry XMPP domains")
	}
	t, err := base(l.PublicKey, l.SerialNumber, l.NotBefore, l.NotAfter)
	if err != nil {
		return nil, err
	}
	t.DNSNames = l.DNSNames
	t.IPAddresses = l.IPAddresses
	t.EmailAddresses = l.EmailAddresses
	t.BasicConstraintsValid = true
	t.IsCA = false
	t.MaxPathLen = -1 // no pathLenConstraint in a leaf
	l.Revocation.apply(t)

	cn := l.CommonName
	if cn == "" {
		cn = defaultCommonName(l)
	}
	t.Subject = pkix.Name{CommonName: cn}

	switch p {
	case TLSServer:
		err = tlsServer(t, l)
	case TLSClient:
		err = tlsClient(t, l)
	case XMPP:
		err = xmpp(t, l)
	case VPN:
		err = vpn(t, l)
	case Libvirt:
		err = libvirt(t, l)
	}
	if err != nil {
		return nil, err
	}
	if slices.Contains(t.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		if err := commonNameInSAN(t); err != nil {
			return nil, err
		}
	}
	if t.Subject.CommonName == "" && len(t.DNSNames)+len(t.IPAddresses)+len(t.EmailAddresses) == 0 {
		return nil, errs.New(errs.Malformed, "the certificate would name nobody: give a common name or at least one DNS name, IP address or email")
	}
	return t, nil
}

// maxCNLength is ub-common-name (RFC 5280 Appendix A).
const maxCNLength = 64

// defaultCommonName picks the first name that fits in a CN. Leaving the CN
// empty is better than truncating it: an empty subject is legal when the SAN
// is present (and then marked critical).
func defaultCommonName(l Leaf) string {
	for _, n := range l.DNSNames {
		if len(n) <= maxCNLength {
			return n
		}
	}
	for _, n := range l.EmailAddresses {
		if len(n) <= maxCNLength {
			return n
		}
	}
	if len(l.IPAddresses) > 0 {
		return l.IPAddresses[0].String()
	}
	return ""
}

// commonNameInSAN enforces the Baseline Requirements rule that a server
// certificate's CN repeats one of its SAN entries. It applies to certificates
// with serverAuth only: in a client-only certificate the CN is a user name
// ("john.doe" for OpenVPN), not a host name, and no TLS peer matches it
// against a host. The CN is refused, never silently added to the SAN: policy
// has checked the SAN, not the CN.
func commonNameInSAN(t *x509.Certificate) error {
	cn := t.Subject.CommonName
	if cn == "" {
		return nil
	}
	if len(cn) > maxCNLength {
		return errs.New(errs.Rejected, "common name %q is longer than %d characters", cn, maxCNLength)
	}
	if ip := net.ParseIP(cn); ip != nil {
		for _, a := range t.IPAddresses {
			if a.Equal(ip) {
				return nil
			}
		}
	} else if slices.Contains(t.DNSNames, cn) {
		return nil
	}
	return errs.New(errs.Rejected, "common name %q of a server certificate must also be one of its DNS names or IP addresses", cn)
}

// base checks the fields every template shares and fills them in.
func base(pub crypto.PublicKey, serial *big.Int, notBefore, notAfter time.Time) (*x509.Certificate, error) {
	if serial == nil || serial.Sign() <= 0 {
		return nil, errs.New(errs.Malformed, "serial number must be positive (RFC 5280 4.1.2.2)")
	}
	if len(serial.Bytes()) > 20 {
		return nil, errs.New(errs.Malformed, "serial number is longer than 20 octets (RFC 5280 4.1.2.2)")
	}
	if notBefore.IsZero() || notAfter.IsZero() {
		return nil, errs.New(errs.Malformed, "validity needs both a start and an end")
	}
	if !notAfter.After(notBefore) {
		return nil, errs.New(errs.Malformed, "validity ends (%s) before it starts (%s)", notAfter.Format(time.RFC3339), notBefore.Format(time.RFC3339))
	}
	if err := checkKey(pub); err != nil {
		return nil, err
	}
	ski, err := SubjectKeyID(pub)
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		SerialNumber: serial,
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		PublicKey:    pub,
		SubjectKeyId: ski,
	}, nil
}

// checkKey accepts the key types browsers and OpenSSL-based peers agree on:
// RSA of 2048 to 8192 bits with the exponent 65537, ECDSA P-256 and P-384,
// Ed25519. P-521 is refused because Mozilla's root policy and several TLS
// stacks do not accept it. It is the one check of certificate keys.
func checkKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case nil:
		return errs.New(errs.Malformed, "no public key")
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return errs.New(errs.Rejected, "RSA key has %d bits; at least 2048 are required", k.N.BitLen())
		}
		if k.N.BitLen() > 8192 {
			return errs.New(errs.Rejected, "RSA key has %d bits; at most 8192 are accepted", k.N.BitLen())
		}
		if k.E != 65537 {
			return errs.New(errs.Rejected, "RSA key must use the exponent 65537")
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return errs.New(errs.Rejected, "ECDSA curve %s is not accepted (use P-256 or P-384)", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return errs.New(errs.Rejected, "unsupported public key type %T (use ECDSA P-256/P-384, Ed25519 or RSA)", pub)
	}
	return nil
}

// SubjectKeyID is RFC 7093 section 2 method 1: the leftmost 160 bits of the
// SHA-256 hash of the subjectPublicKey BIT STRING. Computing it here gives
// leaves and CAs the same method whatever Go's default is.
func SubjectKeyID(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, errs.Wrap(errs.Malformed, err, "cannot encode public key")
	}
	var spki struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		return nil, errs.Wrap(errs.Internal, err, "cannot decode public key")
	}
	sum := sha256.Sum256(spki.PublicKey.Bytes)
	return sum[:20], nil
}

// keyUsage is digitalSignature for every key, plus keyEncipherment for RSA
// on the server side where RSA key transport may still be negotiated
// (TLS 1.2 and older; OpenVPN's default cipher suites).
func keyUsage(pub crypto.PublicKey, u Usage) x509.KeyUsage {
	ku := x509.KeyUsageDigitalSignature
	if _, ok := pub.(*rsa.PublicKey); ok && u == Server {
		ku |= x509.KeyUsageKeyEncipherment
	}
	return ku
}
