package load

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Ceiling measures, on one core, the cryptography one issuance cannot do
// without: the client's five ES256 request signatures and the server's five
// verifications, a P-256 certificate key and its CSR, the CSR's check, and
// the CA key's certificate signature (the draft that is linted first is
// signed by no key). It returns the time per issuance.
func Ceiling(n int) time.Duration {
	acct, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: acct}, nil)
	// The certificate signature is measured as what it costs: a SHA-256
	// over a to-be-signed body and a P-256 signature, with a throwaway
	// key; no certificate is made outside internal/ca.
	tbs := make([]byte, 700)
	rand.Read(tbs)
	start := time.Now()
	for i := 0; i < n; i++ {
		for j := 0; j < 5; j++ {
			obj, _ := signer.Sign([]byte(`{"identifiers":[{"type":"dns","value":"a.load.test"}]}`))
			obj.Verify(acct.Public())
		}
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"a.load.test"}}, k)
		csr, _ := x509.ParseCertificateRequest(der)
		csr.CheckSignature()
		h := sha256.Sum256(tbs)
		ecdsa.SignASN1(rand.Reader, caKey, h[:])
	}
	return time.Since(start) / time.Duration(n)
}
