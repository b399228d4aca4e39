package ca_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"testing"
	"time"

	"signet/internal/audit"
	"signet/internal/ca"
	"signet/internal/errs"
)

// TestSignCheckpoint signs a checkpoint with an Ed25519 audit key and reads
// it back with the key's verifier key; another kind of key is refused.
func TestSignCheckpoint(t *testing.T) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	want := audit.Checkpoint{Seq: 42, Hash: make([]byte, audit.HashSize), Time: time.Date(2026, 12, 6, 13, 0, 0, 0, time.UTC)}
	want.Hash[0] = 7
	msg, err := ca.SignCheckpoint(key, want)
	if err != nil {
		t.Fatal(err)
	}
	vkey, _ := audit.VerifierKey(key.Public().(ed25519.PublicKey))
	got, err := audit.OpenCheckpoint(msg, vkey)
	if err != nil || got.Seq != want.Seq || string(got.Hash) != string(want.Hash) || !got.Time.Equal(want.Time) {
		t.Fatalf("OpenCheckpoint(%q): %+v, %v; want %+v", msg, got, err, want)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := ca.SignCheckpoint(ec, want); errs.KindOf(err) != errs.Rejected {
		t.Errorf("signed with an ECDSA key: %v", err)
	}
}
