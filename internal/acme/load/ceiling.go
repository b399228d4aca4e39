package load

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Ceiling measures, on one core, the cryptography one issuance cannot do
// without: the client's five ES256 request signatures and the server's five
// verifications, a P-256 certificate key and its CSR, the CSR's check, and
// the two certificate signatures (throwaway key for the lint, then the CA
// key). It returns the time per issuance.
func Ceiling(n int) time.Duration {
	acct, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	lintKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: acct}, nil)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ca"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	caCert, _ := x509.ParseCertificate(caDER)
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
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 2)), DNSNames: csr.DNSNames, NotBefore: time.Now(),
			NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
		x509.CreateCertificate(rand.Reader, tmpl, caCert, csr.PublicKey, lintKey)
		h := sha256.Sum256(der)
		ecdsa.SignASN1(rand.Reader, caKey, h[:])
	}
	return time.Since(start) / time.Duration(n)
}
