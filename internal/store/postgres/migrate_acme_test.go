package postgres

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"signet/internal/audit"
	"signet/internal/store/postgres/pgtest"
)

// TestOldSchemaKeepsACME opens a database made by the schema before ACME
// became a setting (steps 1-3): its issuing X.509 authorities keep serving
// ACME, the root and SSH authorities do not, and none requires EAB.
func TestOldSchemaKeepsACME(t *testing.T) {
	url := pgtest.URL(t)
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, pool, migrations[:3], time.Now()); err != nil {
		t.Fatal(err)
	}
	prev := audit.Genesis
	for i, a := range []struct{ name, purpose, parent string }{
		{"root", "root", ""}, {"web", "tls-server", "root"}, {"admins", "tls-client", "root"}, {"hosts", "ssh-host", "root"},
	} {
		ev := audit.Event{Seq: int64(i + 1), Time: time.Unix(0, int64(i+1)).UTC(), Kind: audit.KindAuthorityCreate, Actor: "cli", Authority: a.name, Subject: a.name}
		ev.Seal(prev)
		prev = ev.Hash
		if _, err := pool.Exec(ctx, `INSERT INTO events (seq, time, kind, actor, authority, subject, prev, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			ev.Seq, ev.Time.UnixNano(), ev.Kind, ev.Actor, ev.Authority, ev.Subject, ev.Prev, ev.Hash); err != nil {
			t.Fatal(err)
		}
		var parent any
		if a.parent != "" {
			parent = a.parent
		}
		if _, err := pool.Exec(ctx, `INSERT INTO authorities (name, purpose, parent, key_uri, default_validity, max_validity, created_at, event_seq)
			VALUES ($1, $2, $3, 'file:k', 1, 1, 1, $4)`, a.name, a.purpose, parent, ev.Seq); err != nil {
			t.Fatal(err)
		}
	}
	pool.Close()

	s := open(t, url)
	all, err := s.Authorities(ctx)
	if err != nil || len(all) != 4 {
		t.Fatalf("Authorities: %d, %v", len(all), err)
	}
	want := map[string]bool{"admins": true, "hosts": false, "root": false, "web": true}
	for _, a := range all {
		if a.ACME != want[a.Name] || a.RequireEAB {
			t.Errorf("authority %q after migration: acme %v, require_eab %v; want acme %v, no EAB", a.Name, a.ACME, a.RequireEAB, want[a.Name])
		}
	}
	if _, err := audit.Verify(ctx, s); err != nil {
		t.Errorf("the migrated store's chain: %v", err)
	}
}
