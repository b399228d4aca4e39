package profile

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"time"

	"signet/internal/errs"
)

// OIDOCSPNoCheck is id-pkix-ocsp-nocheck (RFC 6960 4.2.2.2.1).
var OIDOCSPNoCheck = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}

// Responder describes a delegated OCSP responder certificate.
type Responder struct {
	CommonName   string
	PublicKey    crypto.PublicKey
	NotBefore    time.Time
	NotAfter     time.Time
	SerialNumber *big.Int
}

// OCSPResponderTemplate is a delegated responder (RFC 6960 4.2.2.2): only
// id-kp-OCSPSigning, digitalSignature, and id-pkix-ocsp-nocheck so that
// clients do not ask about the responder's own status (there is no answer
// that would not be circular). It must be short-lived for the same reason:
// expiry is its only revocation.
func OCSPResponderTemplate(r Responder) (*x509.Certificate, error) {
	if r.CommonName == "" || len(r.CommonName) > maxCNLength {
		return nil, errs.New(errs.Malformed, "responder common name %q: want 1 to %d characters", r.CommonName, maxCNLength)
	}
	t, err := base(r.PublicKey, r.SerialNumber, r.NotBefore, r.NotAfter)
	if err != nil {
		return nil, err
	}
	t.Subject = pkix.Name{CommonName: r.CommonName}
	t.BasicConstraintsValid = true
	t.MaxPathLen = -1
	t.KeyUsage = x509.KeyUsageDigitalSignature
	t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning}
	t.ExtraExtensions = []pkix.Extension{{Id: OIDOCSPNoCheck, Value: []byte{0x05, 0x00}}} // NULL
	return t, nil
}
