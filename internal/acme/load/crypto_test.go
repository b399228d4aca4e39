package load_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"signet/internal/ca"
	"signet/internal/cputime"
	"signet/internal/lint"
	"signet/internal/profile"
)

// BenchmarkServerCrypto measures, one at a time, the work a complete ACME
// issuance cannot do without on the server: five JWS verifications (ES256,
// go-jose, one per POST: newOrder, authorization, challenge, finalize,
// certificate), the CSR's parse and signature check (ca.ParseCSR), the
// lint of the leaf (lint.Gate.Check on a tls-server leaf as signet makes
// it) and the CA key's one P-256 signature. "issuance" is all of them in
// a row: the floor under the server's CPU per certificate.
//
//	go test ./internal/acme/load -run '^$' -bench ServerCrypto
func BenchmarkServerCrypto(b *testing.B) {
	acct, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: acct}, &jose.SignerOptions{
		ExtraHeaders: map[jose.HeaderKey]any{"nonce": "abc", "url": "https://ca.test/acme/default/new-order"}})
	if err != nil {
		b.Fatal(err)
	}
	obj, err := signer.Sign([]byte(`{"identifiers":[{"type":"dns","value":"a.load.test"}]}`))
	if err != nil {
		b.Fatal(err)
	}
	jws := obj.FullSerialize()
	certKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"a.load.test"}}, certKey)
	if err != nil {
		b.Fatal(err)
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	issuer := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Load CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, SubjectKeyId: []byte{1, 2, 3, 4}}
	tmpl, err := profile.LeafTemplate(profile.TLSServer, profile.Leaf{DNSNames: []string{"a.load.test"}, PublicKey: certKey.Public(),
		NotBefore: now, NotAfter: now.Add(90 * 24 * time.Hour), SerialNumber: big.NewInt(0x7f0102030405),
		Revocation: profile.Pointers{CRL: "http://ca.test/crl/default/0.crl", OCSP: "http://ca.test/ocsp/default"}})
	if err != nil {
		b.Fatal(err)
	}
	leaf, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, certKey.Public(), caKey)
	if err != nil {
		b.Fatal(err)
	}
	gate, err := lint.New()
	if err != nil {
		b.Fatal(err)
	}
	if err := gate.Check(leaf); err != nil {
		b.Fatalf("the benchmark's leaf fails lint: %v", err)
	}
	tbs := leaf[4:] // the cost of a signature hardly depends on what is signed
	steps := map[string]func(){
		"jws-verify": func() {
			o, err := jose.ParseSignedJSON(jws, []jose.SignatureAlgorithm{jose.ES256})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := o.Verify(acct.Public()); err != nil {
				b.Fatal(err)
			}
		},
		"csr-check": func() {
			if _, err := ca.ParseCSR(csr); err != nil {
				b.Fatal(err)
			}
		},
		"lint": func() {
			if err := gate.Check(leaf); err != nil {
				b.Fatal(err)
			}
		},
		"sign": func() {
			h := sha256.Sum256(tbs)
			if _, err := ecdsa.SignASN1(rand.Reader, caKey, h[:]); err != nil {
				b.Fatal(err)
			}
		},
	}
	steps["issuance"] = func() {
		for range 5 {
			steps["jws-verify"]()
		}
		steps["csr-check"]()
		steps["lint"]()
		steps["sign"]()
	}
	for _, name := range []string{"jws-verify", "csr-check", "lint", "sign", "issuance"} {
		b.Run(name, func(b *testing.B) {
			// CPU per operation, steadier than wall time on a shared machine.
			cpu := cputime.Process()
			for b.Loop() {
				steps[name]()
			}
			b.ReportMetric(float64((cputime.Process()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}
