package wfe

import (
	"testing"
	"time"
)

// FuzzJWS feeds untrusted bytes through the request decoding path: the
// JWS shape checks, go-jose parsing, key checks, signature verification
// with the embedded key, the nonce check and payload decoding. None may
// panic, and nothing unsigned may come out verified.
func FuzzJWS(f *testing.F) {
	f.Add([]byte(`{"protected":"eyJhbGciOiJFUzI1NiJ9","payload":"","signature":"AAAA"}`))
	f.Add([]byte(`{"signatures":[]}`))
	n := newNonces([]byte("fuzz key"), time.Minute, time.Now)
	f.Fuzz(func(t *testing.T, body []byte) {
		jws, h, err := parseJWS(body, algorithms)
		if err != nil {
			return
		}
		n.Use(h.Nonce)
		if h.JSONWebKey != nil && checkKey(h.JSONWebKey) == nil {
			thumbprint(h.JSONWebKey)
			if payload, err := jws.Verify(h.JSONWebKey); err == nil {
				var v map[string]any
				decode(payload, &v)
			}
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
	// Rotation keeps refusing used nonces for a lifetime.
	d := n.New()
	if !n.Use(d) {
		t.Fatal("fresh nonce refused")
	}
	now = now.Add(50 * time.Second)
	n.Use(n.New()) // rotates the generation in some shard
	if n.Use(d) {
		t.Error("a used nonce was accepted after a rotation")
	}
}
