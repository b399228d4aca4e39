package catest

import (
	"crypto/x509"
	"testing"
)

// TestCeiling checks that the ceiling signs a real leaf: parseable, signed
// by its issuer, for the name the template holds.
func TestCeiling(t *testing.T) {
	c := NewCeiling(t)
	der, err := c.Sign()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := leaf.CheckSignatureFrom(c.Issuer); err != nil {
		t.Errorf("leaf not signed by the ceiling's CA: %v", err)
	}
	if err := leaf.VerifyHostname("www.example.org"); err != nil {
		t.Errorf("leaf: %v", err)
	}
}
