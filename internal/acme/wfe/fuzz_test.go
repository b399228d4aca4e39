package wfe

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// FuzzJWS feeds untrusted bytes to parseJWS, which verify runs first. None
// may panic, and what it accepts has the shape RFC 8555 §6.2 requires: the
// flattened serialization, exactly one signature, no unprotected header;
// and a signature that verifies under the embedded key covers the payload
// the body carries.
func FuzzJWS(f *testing.F) {
	f.Add([]byte(`{"protected":"eyJhbGciOiJFUzI1NiJ9","payload":"","signature":"AAAA"}`))
	f.Add([]byte(`{"signatures":[]}`))
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{EmbedJWK: true}).WithHeader("nonce", "n").WithHeader("url", "https://ca/x"))
	signed, _ := signer.Sign([]byte(`{"a":1}`))
	good := []byte(signed.FullSerialize())
	f.Add(good)
	f.Add(bytes.Replace(good, []byte(`{`), []byte(`{"header":{"kid":"x"},`), 1))
	f.Fuzz(func(t *testing.T, body []byte) {
		jws, h, err := parseJWS(body, algorithms)
		if err != nil {
			return
		}
		if len(jws.Signatures) != 1 || h != &jws.Signatures[0].Protected {
			t.Fatalf("accepted %d signatures, header %p", len(jws.Signatures), h)
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(bytes.TrimSpace(body), &fields); err != nil {
			t.Fatalf("accepted a body that is not a JSON object: %v", err)
		}
		for k := range fields {
			if k := strings.ToLower(k); k == "header" || k == "signatures" {
				t.Fatalf("accepted a body with %q", k)
			}
		}
		if u := jws.Signatures[0].Unprotected; u.KeyID != "" || u.JSONWebKey != nil || u.Nonce != "" || len(u.ExtraHeaders) != 0 {
			t.Fatalf("accepted an unprotected header %+v", u)
		}
		if h.JSONWebKey == nil || checkKey(h.JSONWebKey) != nil {
			return
		}
		payload, err := jws.Verify(h.JSONWebKey)
		if err != nil {
			return
		}
		if !bytes.Equal(payload, jws.UnsafePayloadWithoutVerification()) {
			t.Fatalf("verified payload %q differs from the body's %q", payload, jws.UnsafePayloadWithoutVerification())
		}
	})
}
