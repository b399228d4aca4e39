package wfe

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// TestDecodeSigned: requests signed by go-jose with each accepted
// algorithm decode and verify; a wrong key, a key of another type or
// curve, a changed payload and refused header members do not.
func TestDecodeSigned(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	keys := map[jose.SignatureAlgorithm]crypto.Signer{jose.ES256: p256, jose.ES384: p384, jose.RS256: rsaKey, jose.EdDSA: edKey}
	sign := func(alg jose.SignatureAlgorithm, key crypto.Signer, extra map[jose.HeaderKey]any, payload string) []byte {
		t.Helper()
		opts := (&jose.SignerOptions{EmbedJWK: true}).WithHeader("nonce", "n1").WithHeader("url", "https://x/acme/a/new-order")
		for k, v := range extra {
			opts.WithHeader(k, v)
		}
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
		if err != nil {
			t.Fatal(err)
		}
		jws, err := s.Sign([]byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		return []byte(jws.FullSerialize())
	}
	for alg, key := range keys {
		s, err := decodeSigned(sign(alg, key, nil, `{"a":1}`))
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if s.nonce != "n1" || s.url != "https://x/acme/a/new-order" || string(s.payload) != `{"a":1}` || s.jwk == nil {
			t.Errorf("%s: decoded %+v", alg, s)
		}
		if err := s.verify(s.jwk); err != nil {
			t.Errorf("%s: own signature does not verify: %v", alg, err)
		}
		for other, k := range keys {
			if other != alg && s.verify(&jose.JSONWebKey{Key: k.Public()}) == nil {
				t.Errorf("%s signature verified with a %s key", alg, other)
			}
		}
		// The same algorithm, another key.
		if alg == jose.ES256 {
			k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if s.verify(&jose.JSONWebKey{Key: k2.Public()}) == nil {
				t.Error("ES256 signature verified with another P-256 key")
			}
		}
		s.payload = []byte(`{"a":2}`)
		s.input[len(s.input)-1] ^= 1
		if s.verify(s.jwk) == nil {
			t.Errorf("%s: a changed payload verified", alg)
		}
	}
	// An empty payload is a POST-as-GET.
	body := sign(jose.ES256, p256, nil, "")
	if s, err := decodeSigned(body); err != nil || string(s.payload) != "" {
		t.Fatalf("POST-as-GET: %v", err)
	}
	for name, b := range map[string][]byte{
		"crit":           sign(jose.ES256, p256, map[jose.HeaderKey]any{"crit": []string{"exp"}, "exp": 1}, "{}"),
		"HS256":          []byte(`{"protected":"eyJhbGciOiJIUzI1NiJ9","payload":"","signature":"AAAA"}`),
		"none":           []byte(`{"protected":"eyJhbGciOiJub25lIn0","payload":"","signature":""}`),
		"null":           []byte(`{"protected":"eyJhbGciOiJFUzI1NiJ9","payload":null,"signature":"AAAA"}`),
		"signatures":     []byte(`{"signatures":[]}`),
		"header":         []byte(`{"protected":"eyJhbGciOiJFUzI1NiJ9","header":{},"payload":"","signature":"AAAA"}`),
		"no payload":     []byte(`{"protected":"eyJhbGciOiJFUzI1NiJ9","signature":"AAAA"}`),
		"compact":        []byte(`eyJhbGciOiJFUzI1NiJ9..AAAA`),
		"bad base64":     []byte(`{"protected":"eyJhbGciOiJFUzI1NiJ9!","payload":"","signature":"AAAA"}`),
		"not object":     []byte(`{"protected":"WzFd","payload":"","signature":"AAAA"}`),
		"Alg is not alg": []byte(`{"protected":"` + strings.TrimRight(b64enc(`{"Alg":"ES256"}`), "=") + `","payload":"","signature":"AAAA"}`),
	} {
		if _, err := decodeSigned(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}

func b64enc(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
