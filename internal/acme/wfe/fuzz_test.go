package wfe

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

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

// TestNonces: single use, authenticated, expiring.
func TestNonces(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	n := newNonces([]byte("k1"), time.Minute, clock)
	other := newNonces([]byte("k2"), time.Minute, clock)
	a := n.New()
	if len(a) != nonceLen {
		t.Fatalf("nonce %q has length %d, want %d", a, len(a), nonceLen)
	}
	if other.Use(a) {
		t.Error("a nonce under another key was accepted")
	}
	if !n.Use(a) || n.Use(a) {
		t.Error("a nonce must be accepted exactly once")
	}
	b := n.New()
	tampered := []byte(b)
	tampered[3] ^= 1
	if n.Use(string(tampered)) {
		t.Error("a tampered nonce was accepted")
	}
	// A second node with the same key accepts it: shared through the store.
	peer := newNonces([]byte("k1"), time.Minute, clock)
	if !peer.Use(b) {
		t.Error("a peer node refused a nonce under the shared key")
	}
	c := n.New()
	now = now.Add(2 * time.Minute)
	if n.Use(c) {
		t.Error("an expired nonce was accepted")
	}
	// Rotation keeps refusing used nonces for a lifetime: start a
	// generation in every shard (the counter runs through all of them),
	// record d late in it, then move past the generation's end while d is
	// still young. d's shard rotates on that Use and must find d in prev.
	r := newNonces([]byte("k3"), time.Minute, clock)
	for range 1024 {
		r.Use(r.New())
	}
	now = now.Add(50 * time.Second)
	d := r.New()
	if !r.Use(d) {
		t.Fatal("fresh nonce refused")
	}
	now = now.Add(20 * time.Second)
	if r.Use(d) {
		t.Error("a nonce used late in a generation was accepted after the rotation")
	}
}
