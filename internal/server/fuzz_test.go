package server

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"testing"

	"golang.org/x/crypto/ssh"

	"signet/internal/errs"
)

// FuzzDecodeIssueRequest feeds untrusted API bodies to the decoder: no
// panic, only malformed errors, and every accepted request has a CSR.
func FuzzDecodeIssueRequest(f *testing.F) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"a.example.org"}}, key)
	csrPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	good, _ := json.Marshal(map[string]any{"csr": csrPEM, "dns": []string{"a.example.org"}, "ip": []string{"10.0.0.1"}, "validity": "7d"})
	f.Add("application/json", good)
	f.Add("application/pkcs10", der)
	f.Add("application/pkcs10", []byte(csrPEM))
	f.Add("application/json; charset=utf-8", []byte(`{"csr":"","ip":["x"]}`))
	f.Add("application/json", []byte(`{"csr":1}{}`))
	f.Add("text/plain", []byte("hello"))
	f.Fuzz(func(t *testing.T, ctype string, body []byte) {
		req, err := decodeIssueRequest(ctype, body)
		if err != nil {
			if k := errs.KindOf(err); k != errs.Malformed {
				t.Fatalf("error of kind %v, want malformed: %v", k, err)
			}
			return
		}
		if req.CSR == nil {
			t.Fatal("accepted a request without a CSR")
		}
	})
}

// FuzzDecodeHostRenewal feeds untrusted host renewal bodies to the
// decoder: no panic, only malformed errors, and every accepted renewal has
// a certificate and a signature.
func FuzzDecodeHostRenewal(f *testing.F) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromSigner(priv)
	cert := &ssh.Certificate{Key: signer.PublicKey(), Serial: 7, CertType: ssh.HostCert, ValidPrincipals: []string{"web.example.org"}, ValidBefore: ssh.CertTimeInfinity}
	cert.SignCert(rand.Reader, signer)
	sig, _ := signer.Sign(rand.Reader, []byte("m"))
	good, _ := json.Marshal(map[string]string{"certificate": string(ssh.MarshalAuthorizedKey(cert)), "nonce": "n",
		"signature": base64.StdEncoding.EncodeToString(ssh.Marshal(sig))})
	f.Add(good)
	f.Add([]byte(`{"certificate":"ssh-ed25519 AAAA","nonce":"n","signature":"AAAA"}`))
	f.Add([]byte(`{"certificate":"x","nonce":"n","signature":"AAAAAAAAAAAAAAAA"}`))
	f.Add([]byte(`{}{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := decodeHostRenewal(body)
		if err != nil {
			if k := errs.KindOf(err); k != errs.Malformed {
				t.Fatalf("error of kind %v, want malformed: %v", k, err)
			}
			return
		}
		if r.Cert == nil || r.Signature == nil || r.Nonce == "" {
			t.Fatalf("accepted an incomplete renewal: %+v", r)
		}
	})
}
