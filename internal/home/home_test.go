package home

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"signet/internal/acme/eab"
)

// Nodes are homes copied from one fresh home (cmd/acmeload does so): an
// EAB key one node seals, another must open.
func TestCopiedHomesShareEABKey(t *testing.T) {
	ctx := context.Background()
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	h, _, err := Init(ctx, a, InitOptions{Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	if fi, err := os.Stat(filepath.Join(a, eab.KEKFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("Init left no 0600 %s: %v %v", eab.KEKFile, fi, err)
	}
	if err := os.CopyFS(b, os.DirFS(a)); err != nil {
		t.Fatal(err)
	}
	sealers := make([]*eab.Sealer, 2)
	for i, dir := range []string{a, b} {
		h, err := Open(ctx, dir, Unlock{})
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		if sealers[i], err = h.EABSealer(); err != nil {
			t.Fatal(err)
		}
	}
	key := []byte("an HMAC key of thirty-two bytes!")
	got, err := sealers[1].Open("kid-1", sealers[0].Seal("kid-1", key))
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("node b opened node a's key: %q, %v", got, err)
	}
}

// A home made before Init wrote the key-encryption key gets one when opened.
func TestOpenCreatesMissingEABKey(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "home")
	h, _, err := Init(ctx, dir, InitOptions{Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	if err := os.Remove(filepath.Join(dir, eab.KEKFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := eab.LoadKEK(filepath.Join(dir, eab.KEKFile)); err == nil {
		t.Fatal("LoadKEK made up a missing key")
	}
	if _, err := os.Stat(filepath.Join(dir, eab.KEKFile)); !os.IsNotExist(err) {
		t.Fatalf("LoadKEK created the key: %v", err)
	}
	h, err = Open(ctx, dir, Unlock{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.EABSealer(); err != nil {
		t.Fatal(err)
	}
}
