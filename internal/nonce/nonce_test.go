package nonce

import (
	"testing"
	"time"
)

// TestNonces: single use, authenticated, expiring.
func TestNonces(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	n := New([]byte("k1"), time.Minute, clock)
	other := New([]byte("k2"), time.Minute, clock)
	a := n.New()
	if len(a) != Len {
		t.Fatalf("nonce %q has length %d, want %d", a, len(a), Len)
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
	peer := New([]byte("k1"), time.Minute, clock)
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
	r := New([]byte("k3"), time.Minute, clock)
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
