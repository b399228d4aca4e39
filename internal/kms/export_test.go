//go:build cgo

package kms

import "github.com/miekg/pkcs11"

// RequireMechanism exposes the token's mechanism check to kms_test, so the
// refusal of what a token cannot do is tested without an old token at hand.
func RequireMechanism(m *Manager, uri string, mech uint, name string, bits int) error {
	u, err := ParseURI(uri)
	if err != nil {
		return err
	}
	t, err := m.openToken(u)
	if err != nil {
		return err
	}
	return t.requireMechanism("pkcs11: test on token "+t.label, mech, name, bits)
}

const CKMRSAKeyPairGen = pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN
