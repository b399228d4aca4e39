package profile

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"time"

	"signet/internal/errs"
)

// CA describes an authority certificate to be made.
type CA struct {
	CommonName   string
	Organization string
	PublicKey    crypto.PublicKey
	NotBefore    time.Time
	NotAfter     time.Time
	SerialNumber *big.Int
	MaxPathLen   int      // -1: no limit; RootTemplate only (issuing authorities always get 0)
	Revocation   Pointers // issuing authorities only: the root's CRL and certificate
}

// caKeyUsage is what every signet CA certificate asserts: keyCertSign and
// cRLSign to issue certificates and CRLs, and digitalSignature so the CA key
// may sign OCSP responses directly and because RFC 6120 13.7.1.2 asks it of
// an XMPP CA.
const caKeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature

// RootTemplate returns the template of a self-signed root: a CA without
// extended key usage (BR 7.1.2.1 forbids it in roots), the path length the
// caller chose, and a SubjectKeyId (RFC 7093 method 1), which the leaves'
// AuthorityKeyId will repeat.
func RootTemplate(c CA) (*x509.Certificate, error) {
	t, err := caTemplate(c)
	if err != nil {
		return nil, err
	}
	switch {
	case c.MaxPathLen < -1:
		return nil, errs.New(errs.Malformed, "path length %d is invalid (-1 means no limit)", c.MaxPathLen)
	case c.MaxPathLen == -1:
		t.MaxPathLen = -1
	default:
		t.MaxPathLen = c.MaxPathLen
		t.MaxPathLenZero = c.MaxPathLen == 0
	}
	return t, nil
}

// AuthorityTemplate returns the template of the issuing CA for purpose p:
// it signs only leaves (pathLenConstraint 0), and its extended key usage is
// the purpose's, so a key compromised in, say, the VPN CA cannot mint a
// certificate usable for anything but VPN's serverAuth/clientAuth (EKU
// chaining, honoured by OpenSSL, NSS, Go and the Windows stack).
func AuthorityTemplate(p Purpose, c CA) (*x509.Certificate, error) {
	if p.IsSSH() {
		return nil, errs.New(errs.Rejected, "SSH authorities issue SSH certificates, not X.509")
	}
	if _, err := ParsePurpose(string(p)); err != nil {
		return nil, err
	}
	if c.MaxPathLen > 0 {
		return nil, errs.New(errs.Malformed, "an issuing authority signs only leaves: its path length is 0, not %d", c.MaxPathLen)
	}
	t, err := caTemplate(c)
	if err != nil {
		return nil, err
	}
	t.MaxPathLen = 0
	t.MaxPathLenZero = true
	t.ExtKeyUsage = purposeEKU(p)
	c.Revocation.apply(t)
	return t, nil
}

// purposeEKU lists every extended key usage the purpose's leaves carry.
func purposeEKU(p Purpose) []x509.ExtKeyUsage {
	switch p {
	case TLSServer:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	case TLSClient:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
}

func caTemplate(c CA) (*x509.Certificate, error) {
	if c.CommonName == "" {
		return nil, errs.New(errs.Malformed, "a CA certificate needs a common name")
	}
	if len(c.CommonName) > maxCNLength {
		return nil, errs.New(errs.Malformed, "common name %q is longer than %d characters", c.CommonName, maxCNLength)
	}
	t, err := base(c.PublicKey, c.SerialNumber, c.NotBefore, c.NotAfter)
	if err != nil {
		return nil, err
	}
	t.Subject = pkix.Name{CommonName: c.CommonName}
	if c.Organization != "" {
		t.Subject.Organization = []string{c.Organization}
	}
	t.BasicConstraintsValid = true
	t.IsCA = true
	t.KeyUsage = caKeyUsage
	return t, nil
}
