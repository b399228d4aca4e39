//go:build !cgo

package kms

import (
	"crypto"
	"crypto/x509"
	"encoding/hex"

	"signet/internal/errs"
)

// PKCS#11 modules are C libraries, loaded through cgo (crypto11 and
// miekg/pkcs11). A build without cgo has software keys only: every pkcs11:
// key URI gets the one error below.

// PKCS11 reports whether this build can use keys on PKCS#11 tokens.
const PKCS11 = false

func noPKCS11(uri string) error {
	return errs.New(errs.Unavailable, "this signet was built without PKCS#11 (CGO_ENABLED=0), so it cannot use %s: run a signet built with cgo, or use a file: key", Redact(uri))
}

// tokenKey and token stand in for the logged-in tokens of a cgo build;
// this build never opens one.
type tokenKey struct{}

type token struct{}

func (*token) close() error { return nil }

func (m *Manager) generatePKCS11(uri string, _ KeyType) (crypto.Signer, error) {
	return nil, noPKCS11(uri)
}

func (m *Manager) openPKCS11(uri string) (crypto.Signer, error) {
	return nil, noPKCS11(uri)
}

func (m *Manager) listPKCS11(uri string) ([]KeyInfo, error) {
	return nil, noPKCS11(uri)
}

// ListTokens lists no tokens: this build cannot load a module.
func ListTokens(module string) ([]TokenInfo, error) {
	return nil, noPKCS11("the tokens of module " + module)
}

func (m *Manager) unlockToken(target string, _ []byte, _ bool) error {
	return noPKCS11(MarshalURI(&URI{Token: target}))
}

// locateToken says what the URI names; nothing is ever open.
func (m *Manager) locateToken(uri string) Location {
	u, err := ParseURI(uri)
	if err != nil {
		return Location{}
	}
	return Location{Token: u.Token, Object: u.Object, ID: hex.EncodeToString(u.ID)}
}

func (m *Manager) removeTokens(string) []*token { return nil }

func (m *Manager) importPKCS11(uri string, _ *x509.Certificate, _ []*x509.Certificate) (Imported, error) {
	return Imported{}, noPKCS11(uri)
}
