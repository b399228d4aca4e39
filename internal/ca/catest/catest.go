// Package catest holds what tests and benchmarks of several packages build
// around package ca.
package catest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"signet/internal/profile"
)

// Ceiling is the raw cryptography of one X.509 issuance, which benchmarks
// put beside the whole path: a tls-server leaf as the profile builds it,
// signed by a P-256 CA key with x509.CreateCertificate and nothing else.
type Ceiling struct {
	Leaf, Issuer *x509.Certificate
	LeafKey      *ecdsa.PublicKey
	CAKey        *ecdsa.PrivateKey
}

// NewCeiling makes the CA and the leaf template.
func NewCeiling(tb testing.TB) Ceiling {
	tb.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ceiling CA"}, NotBefore: now, NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, SubjectKeyId: []byte{1, 2, 3, 4}}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		tb.Fatal(err)
	}
	issuer, err := x509.ParseCertificate(caDER)
	if err != nil {
		tb.Fatal(err)
	}
	leaf, err := profile.LeafTemplate(profile.TLSServer, profile.Leaf{
		DNSNames: []string{"www.example.org"}, PublicKey: leafKey.Public(), NotBefore: now, NotAfter: now.Add(720 * time.Hour), SerialNumber: big.NewInt(99),
		Revocation: profile.Pointers{CRL: "http://127.0.0.1:8080/crl/web/3.crl", OCSP: "http://127.0.0.1:8080/ocsp/web", IssuerURL: "http://127.0.0.1:8080/ca/web.crt"},
	})
	if err != nil {
		tb.Fatal(err)
	}
	leaf.AuthorityKeyId = issuer.SubjectKeyId
	return Ceiling{Leaf: leaf, Issuer: issuer, LeafKey: &leafKey.PublicKey, CAKey: caKey}
}

// Sign signs the leaf once.
func (c Ceiling) Sign() ([]byte, error) {
	return x509.CreateCertificate(rand.Reader, c.Leaf, c.Issuer, c.LeafKey, c.CAKey)
}
