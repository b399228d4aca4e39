package storetest

import (
	"crypto/sha256"
	"testing"
	"time"

	"signet/internal/errs"
	"signet/internal/store"
)

// testConsoleSessions: sessions are kept by the hash of their ID, touched,
// deleted one by one and when stale.
func testConsoleSessions(t *testing.T, s store.Store) {
	hash := func(id string) []byte { h := sha256.Sum256([]byte(id)); return h[:] }
	a := store.ConsoleSession{IDHash: hash("a"), Operator: "alice", Role: "admin", CreatedAt: t0, SeenAt: t0}
	b := store.ConsoleSession{IDHash: hash("b"), Operator: "bob", Role: "viewer", Certificate: "7f01", CreatedAt: t0.Add(time.Hour), SeenAt: t0.Add(time.Hour)}
	for _, cs := range []store.ConsoleSession{a, b} {
		if err := s.CreateConsoleSession(ctx, cs); err != nil {
			t.Fatal(err)
		}
	}
	wantKind(t, s.CreateConsoleSession(ctx, a), errs.Conflict, "the same session twice")
	wantKind(t, s.CreateConsoleSession(ctx, store.ConsoleSession{IDHash: []byte("short"), Operator: "x", Role: "admin", CreatedAt: t0, SeenAt: t0}),
		errs.Malformed, "a session whose ID hash is not a SHA-256")
	got, err := s.ConsoleSession(ctx, hash("a"))
	if err != nil || got.Operator != "alice" || got.Role != "admin" || !got.CreatedAt.Equal(t0) || !got.SeenAt.Equal(t0) {
		t.Fatalf("session a: %+v, %v", got, err)
	}
	if got, err := s.ConsoleSession(ctx, hash("b")); err != nil || got.Certificate != "7f01" {
		t.Fatalf("session b, signed in with client certificate 7f01: %+v, %v", got, err)
	}
	_, err = s.ConsoleSession(ctx, hash("c"))
	wantKind(t, err, errs.NotFound, "an unknown session")

	if err := s.TouchConsoleSession(ctx, hash("a"), t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ConsoleSession(ctx, hash("a")); err != nil || !got.SeenAt.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("session a after touching: %+v, %v", got, err)
	}
	// b was last seen before a's new time: stale by idleness; a is not.
	if n, err := s.DeleteStaleConsoleSessions(ctx, t0.Add(90*time.Minute), t0.Add(-time.Hour)); err != nil || n != 1 {
		t.Fatalf("delete stale sessions: %d, %v; want 1 (b)", n, err)
	}
	if _, err := s.ConsoleSession(ctx, hash("b")); errs.KindOf(err) != errs.NotFound {
		t.Errorf("session b after deleting the stale: %v", err)
	}
	// a was created before the absolute limit: stale too.
	if n, err := s.DeleteStaleConsoleSessions(ctx, t0, t0.Add(time.Minute)); err != nil || n != 1 {
		t.Fatalf("delete sessions created too long ago: %d, %v; want 1 (a)", n, err)
	}
	if err := s.CreateConsoleSession(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteConsoleSession(ctx, hash("b")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsoleSession(ctx, hash("b")); errs.KindOf(err) != errs.NotFound {
		t.Errorf("session b after sign-out: %v", err)
	}
}
