package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"testing"

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
