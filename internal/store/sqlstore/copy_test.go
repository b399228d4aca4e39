package sqlstore_test

import (
	"database/sql"
	"path/filepath"
	"slices"
	"testing"

	"signet/internal/audit"
	"signet/internal/store"
	"signet/internal/store/postgres"
	"signet/internal/store/sqlite"
	"signet/internal/store/sqlstore"
)

// TestCopyIntoSQLite copies a store of each backend (made before sqlstore,
// then written by today's code: an operator) into a new SQLite file, as
// 'signet backup' does: every copied table arrives row for row and the
// audit chain verifies on the copy, with the same events.
func TestCopyIntoSQLite(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			where := restoreBefore(t, b)
			op := store.Operator{Name: "alice", Role: store.RoleViewer, TokenHash: make([]byte, 32)}
			out := filepath.Join(t.TempDir(), "copy.db")
			var counts map[string]int64
			switch b.name {
			case "sqlite":
				s, err := sqlite.Open(ctx, where)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				if err := s.AddOperator(ctx, op, audit.Event{Actor: "cli"}); err != nil {
					t.Fatal(err)
				}
				if counts, err = sqlite.Load(ctx, out, s); err != nil {
					t.Fatal(err)
				}
			case "postgres":
				s, err := postgres.Open(ctx, where)
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				if err := s.AddOperator(ctx, op, audit.Event{Actor: "cli"}); err != nil {
					t.Fatal(err)
				}
				err = s.Snapshot(ctx, func(src postgres.Source) error {
					counts, err = sqlite.Load(ctx, out, src)
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			if counts["events"] != 13 || counts["certificates"] != 2 || counts["operators"] != 1 {
				t.Fatalf("copied %v; want 13 events (11 made before, the baseline, the operator), 2 certificates, 1 operator", counts)
			}
			c, err := sqlite.Open(ctx, out)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			rep, err := audit.Verify(ctx, c)
			if err != nil || !rep.Intact() || rep.Events != 13 {
				t.Fatalf("audit.Verify on the copy: %+v, %v", rep, err)
			}
			if got, err := c.Operator(ctx, "alice"); err != nil || got.Role != store.RoleViewer {
				t.Fatalf("operator on the copy: %+v, %v", got, err)
			}
			// A failed copy leaves no file behind, and an existing file is
			// never written over.
			if _, err := sqlite.Load(ctx, out, c); err == nil {
				t.Fatal("Load over an existing file succeeded")
			}
		})
	}
}

// TestEveryTableCopiedOrNot: each table of each schema is either carried
// by a copy (store migrate, backup, restore) or named as left out, so that
// a new table cannot be forgotten by them.
func TestEveryTableCopiedOrNot(t *testing.T) {
	queries := map[string]string{
		"sqlite":   "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
		"postgres": "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()",
	}
	drivers := map[string]string{"sqlite": "sqlite", "postgres": "pgx"}
	onEach(t, func(t *testing.T, b backend, where string) {
		b.open(t, where)
		db, err := sql.Open(drivers[b.name], where)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		rows, err := db.QueryContext(ctx, queries[b.name])
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var n int
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				t.Fatal(err)
			}
			n++
			if !slices.Contains(sqlstore.CopiedTables, name) && !slices.Contains(sqlstore.NotCopied, name) {
				t.Errorf("table %s is in neither sqlstore.CopiedTables nor sqlstore.NotCopied", name)
			}
		}
		if err := rows.Err(); err != nil || n < len(sqlstore.CopiedTables) {
			t.Fatalf("listed %d tables, %v", n, err)
		}
	})
}
