package revocation

import (
	"crypto"
	"testing"

	"golang.org/x/crypto/ocsp"
)

// FuzzOCSPRequest feeds arbitrary bytes to the OCSP request path: it must
// answer every input with a parsable response or an error status, never
// panic, and never sign for an issuer it does not serve.
func FuzzOCSPRequest(f *testing.F) {
	fx := newFixture(f)
	c := fx.issue(f, 0)
	f.Add(ocspRequest(f, c, fx.issuer, crypto.SHA1))
	f.Add(ocspRequest(f, c, fx.issuer, crypto.SHA256))
	f.Fuzz(func(t *testing.T, der []byte) {
		resp, status := fx.svc.Lookup(der)
		if resp == nil {
			if _, err := ocsp.ParseResponse(status, nil); err == nil {
				t.Fatalf("error status %x parses as a successful response", status)
			}
			return
		}
		r, err := ocsp.ParseResponse(resp.der, fx.issuer)
		if err != nil {
			t.Fatalf("response does not verify: %v", err)
		}
		req, err := ocsp.ParseRequest(der)
		if err != nil || r.SerialNumber.Cmp(req.SerialNumber) != 0 || r.IssuerHash != req.HashAlgorithm {
			t.Fatalf("answered %v for request %+v (%v)", r.SerialNumber, req, err)
		}
	})
}
