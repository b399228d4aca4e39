package sqlite

import (
	"path/filepath"
	"testing"
	"time"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
	"signet/internal/store/columns"
)

// TestUpdateOrderRefusesAStaleVersion: the update itself refuses an order
// that moved past the version it was read at, even when no check ran
// before it (another process wrote between them), as PostgreSQL's does.
func TestUpdateOrderRefusesAStaleVersion(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "signet.db"))
	if err := s.CreateAuthority(ctx, store.Authority{Name: "ca", KeyURI: "pkcs11:object=ca"}, audit.Event{Actor: "cli"}); err != nil {
		t.Fatal(err)
	}
	a := store.ACMEAccount{ID: "a1", Authority: "ca", KeyID: "k1", Key: []byte(`{}`), Status: store.StatusValid, CreatedAt: time.Unix(1, 0)}
	if err := s.CreateACMEAccount(ctx, a, audit.Event{Actor: "acme"}); err != nil {
		t.Fatal(err)
	}
	o := store.ACMEOrder{ID: "o1", Authority: "ca", AccountID: "a1", Status: store.StatusPending, Expires: time.Unix(3600, 0),
		Identifiers: []store.ACMEIdentifier{{Type: "dns", Value: "h.example.org"}}, CreatedAt: time.Unix(1, 0)}
	if err := s.CreateACMEOrder(ctx, o); err != nil {
		t.Fatal(err)
	}
	o, err := s.ACMEOrder(ctx, "o1")
	if err != nil {
		t.Fatal(err)
	}
	stale := o
	o.Status = store.StatusReady
	if err := s.UpdateACMEOrder(ctx, o); err != nil {
		t.Fatal(err)
	}
	body, err := columns.EncodeOrder(stale)
	if err != nil {
		t.Fatal(err)
	}
	err = s.w.do(ctx, func(*tx) error { return nil }, func(t *tx) error { return t.updateOrder(stale, body) })
	if errs.KindOf(err) != errs.Conflict {
		t.Fatalf("update of a stale order: %v, want a conflict", err)
	}
	if got, err := s.ACMEOrder(ctx, "o1"); err != nil || got.Status != store.StatusReady {
		t.Fatalf("order after the refused update: %v, %v", got.Status, err)
	}
}
