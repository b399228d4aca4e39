package kms

import (
	"context"
	"crypto"
	"crypto/x509"

	"signet/internal/errs"
)

// Imported says what ImportCertificate wrote to a token.
type Imported struct {
	Token    string `json:"token"`
	Label    string `json:"label"`         // the key's CKA_LABEL, given to its certificate
	ID       string `json:"id"`            // the key's CKA_ID (hex), given to its certificate
	NewID    bool   `json:"new_id"`        // the key had no CKA_ID and got ID
	Written  bool   `json:"written"`       // false: the certificate was on the token already
	Replaced int    `json:"replaced"`      // earlier certificates of the key, removed
	Chain    int    `json:"chain_written"` // CA certificates written
	Present  int    `json:"chain_present"` // CA certificates that were there already
}

// ImportCertificate writes leaf to the token holding the key at uri, as a
// CKO_CERTIFICATE object beside the key: the key's CKA_ID and CKA_LABEL,
// which is how pkcs11-helper (OpenVPN's --pkcs11-id), browsers and most
// PKCS#11 clients pair a certificate with its key. A key without CKA_ID
// gets a new random one, on its private and public halves, first.
// Certificates the key had before (same CKA_ID, other contents) are
// removed, so clients see one certificate per key. The CA certificates in
// chain are written too, each under its own CKA_ID (its subject key
// identifier), unless the token holds them already.
//
// Everything is checked before anything is written: leaf must certify the
// key (errs.Rejected otherwise) and chain must hold CA certificates only.
func (m *Manager) ImportCertificate(ctx context.Context, uri string, leaf *x509.Certificate, chain []*x509.Certificate) (Imported, error) {
	if err := ctx.Err(); err != nil {
		return Imported{}, err
	}
	if scheme(uri) != "pkcs11" {
		return Imported{}, errs.New(errs.Malformed, "import certificate for %q: only a key on a PKCS#11 token (pkcs11:token=T;object=NAME) can hold its certificate", Redact(uri))
	}
	signer, err := m.Signer(ctx, uri)
	if err != nil {
		return Imported{}, err
	}
	if !samePublicKey(signer.Public(), leaf.PublicKey) {
		return Imported{}, errs.New(errs.Rejected, "certificate %x (%s) is not for key %s: its public key differs; give the certificate issued for this key",
			leaf.SerialNumber, leaf.Subject, Redact(uri))
	}
	for _, c := range chain {
		if !c.IsCA {
			return Imported{}, errs.New(errs.Malformed, "chain certificate %s is not a CA certificate: give the leaf first, then its issuing authorities", c.Subject)
		}
	}
	return m.importPKCS11(uri, leaf, chain)
}

func samePublicKey(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}
