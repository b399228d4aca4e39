//go:build cgo

package kms_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"signet/internal/errs"
	"signet/internal/kms"
	"signet/internal/kms/kmstest"
)

// TestUnlock: a token whose PIN source is "unlock" is locked until the PIN
// is given; a wrong PIN is refused, forgotten and never tried again (the
// key stays locked, not "wrong PIN" on every use), and the token then
// reports its PIN count low; the right one opens it; Lock closes it again.
func TestUnlock(t *testing.T) {
	ctx := context.Background()
	gen, _ := hsm(t, "ca")
	uri := "pkcs11:token=ca;object=k"
	if _, err := gen.Generate(ctx, uri, kms.ECDSAP256); err != nil {
		t.Fatal(err)
	}
	gen.Close() // one Manager on the module at a time, as in a process

	m := kms.NewManager(kms.Options{Tokens: map[string]kms.Token{"ca": {Module: kmstest.SoftHSMModule, PIN: kms.Unlock}}})
	defer m.Close()
	wantLocked := func(when string) {
		t.Helper()
		if _, err := m.Signer(ctx, uri); errs.KindOf(err) != errs.Locked {
			t.Fatalf("%s: Signer: %v, want locked", when, err)
		}
		if l := m.Locate(uri); !l.Unlock || !l.Locked || l.Token != "ca" || l.Object != "k" {
			t.Fatalf("%s: Locate: %+v", when, l)
		}
	}
	wantLocked("before unlock")
	if err := m.Unlock(ctx, "ca", []byte("000000"), false); errs.KindOf(err) != errs.Unauthorized {
		t.Fatalf("wrong PIN: %v, want unauthorized", err)
	}
	wantLocked("after a wrong PIN")
	if l := m.Locate(uri); !l.PINCountLow {
		t.Errorf("after a wrong PIN the token does not say its PIN count is low: %+v", l)
	}
	if err := m.Unlock(ctx, "other", []byte(kmstest.PIN), false); errs.KindOf(err) != errs.Rejected {
		t.Errorf("unlock of a token not configured with 'unlock': %v, want rejected", err)
	}

	if err := m.Unlock(ctx, "ca", []byte(kmstest.PIN), false); err != nil {
		t.Fatalf("right PIN: %v", err)
	}
	if err := m.Unlock(ctx, "ca", []byte(kmstest.PIN), false); errs.KindOf(err) != errs.Conflict {
		t.Errorf("second unlock: %v, want conflict", err)
	}
	s, err := m.Signer(ctx, uri)
	if err != nil {
		t.Fatalf("Signer after unlock: %v", err)
	}
	d := sha256.Sum256([]byte("x"))
	if _, err := s.Sign(rand.Reader, d[:], crypto.SHA256); err != nil {
		t.Fatalf("Sign after unlock: %v", err)
	}
	if l := m.Locate(uri); l.Locked || l.Slot == nil || l.Serial == "" {
		t.Errorf("Locate after unlock: %+v", l)
	}

	m.Lock("ca")
	wantLocked("after lock")
	if _, err := s.Sign(rand.Reader, d[:], crypto.SHA256); err == nil {
		t.Error("a signer handed out before lock still signs")
	}
}
