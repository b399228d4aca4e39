package ca_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"testing"

	"signet/internal/ca"
	"signet/internal/errs"
)

// FuzzParseCSR feeds untrusted bytes to the CSR parser: it must never panic,
// and everything it accepts must carry a verified signature and a key.
func FuzzParseCSR(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "a.example.org"}, DNSNames: []string{"a.example.org"},
	}, key)
	f.Add(der)
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Add([]byte{0x30, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		csr, err := ca.ParseCSR(data)
		if err != nil {
			if k := errs.KindOf(err); k != errs.Malformed {
				t.Fatalf("error of kind %v, want malformed: %v", k, err)
			}
			return
		}
		if csr.PublicKey == nil || csr.CheckSignature() != nil {
			t.Fatal("accepted a CSR without a key or a valid signature")
		}
	})
}
