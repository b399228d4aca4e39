package audit_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
	"signet/internal/store/postgres"
	"signet/internal/store/postgres/pgtest"
	"signet/internal/store/sqlite"
)

// countingStore counts the passes over the rows and the reads of the
// events, and runs before, if set, as the first pass begins: after the
// events were read.
type countingStore struct {
	store.Store
	passes, reads int
	before        func()
}

func (s *countingStore) Events(ctx context.Context, fn func(audit.Event) error) error {
	s.reads++
	return s.Store.Events(ctx, fn)
}

func (s *countingStore) States(ctx context.Context, keep func(table, key string) bool, fn func(audit.Row) error) error {
	if s.passes == 0 && s.before != nil {
		s.before()
	}
	s.passes++
	return s.Store.States(ctx, keep, fn)
}

// A database to verify: where makes an empty one, open opens one, driver
// is its database/sql driver, and run names the database a run verifies:
// a copy on SQLite, so that each run can write during, the same one on
// PostgreSQL (nil run).
type database struct {
	name   string
	where  func(t *testing.T) string
	open   func(ctx context.Context, where string) (store.Store, error)
	driver string
	run    func(t *testing.T, where string) string
}

var databases = []database{
	{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "signet.db") },
		func(ctx context.Context, where string) (store.Store, error) { return sqlite.Open(ctx, where) }, "sqlite",
		func(t *testing.T, where string) string {
			db, err := os.ReadFile(where)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "signet.db")
			if err := os.WriteFile(path, db, 0o600); err != nil {
				t.Fatal(err)
			}
			return path
		}},
	{"postgres", func(t *testing.T) string { return pgtest.URL(t) },
		func(ctx context.Context, where string) (store.Store, error) { return postgres.Open(ctx, where) }, "pgx", nil},
}

// TestVerifyInPasses verifies a store of 300 certificates, some edited
// behind its back, once in one pass and once in many (a few rows each),
// on SQLite and PostgreSQL: both give the same Report, problems named in
// the same order.
func TestVerifyInPasses(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 6, 1, 2, 3, 0, time.UTC)
	ev := audit.Event{Actor: "test"}
	serial := func(i int) string { return fmt.Sprintf("%032x", i) }
	for _, tc := range []struct {
		name   string
		edit   []string                     // SQL run on the closed store
		during func(store.Store) error      // a write after the events were read
		check  func(audit.RowProblem) error // every problem
		count  int64
	}{
		{name: "intact"},
		{name: "un-revoked", edit: []string{"UPDATE certificates SET status = 'valid', revoked_at = NULL, reason = 0 WHERE status = 'revoked'"},
			count: 30, check: func(p audit.RowProblem) error {
				if p.Table != "certificates" || !slices.Equal(p.Fields, []string{"status", "revoked_at", "reason"}) {
					return fmt.Errorf("want a certificate's status, revoked_at and reason")
				}
				return nil
			}},
		{name: "deleted", edit: []string{"DELETE FROM certificate_names WHERE serial IN ('" + serial(7) + "', '" + serial(200) + "')",
			"DELETE FROM certificates WHERE serial IN ('" + serial(7) + "', '" + serial(200) + "')"},
			count: 2, check: func(p audit.RowProblem) error {
				if p.Table != "certificates" || (p.Key != serial(7) && p.Key != serial(200)) || p.Seq == 0 {
					return fmt.Errorf("want certificate %s or %s, gone", serial(7), serial(200))
				}
				return nil
			}},
		{name: "unrecorded", edit: []string{"INSERT INTO acme_eab_keys (kid, authority, sealed, created_at) SELECT 'kid', 'ca', der, 0 FROM certificates WHERE serial = '" + serial(1) + "'"},
			count: 1, check: func(p audit.RowProblem) error {
				if p.Table != "acme_eab_keys" || p.Key != "kid" || p.Seq != 0 {
					return fmt.Errorf("want the EAB key kid, recorded by no event")
				}
				return nil
			}},
		{name: "written during", during: func(s store.Store) error {
			if err := s.Revoke(ctx, serial(4), t0, 1, ev); err != nil {
				return err
			}
			return s.RecordCertificate(ctx, store.Certificate{Serial: serial(1000), Authority: "ca", DNSNames: []string{"late.example.org"},
				NotBefore: t0, NotAfter: t0.Add(time.Hour), DER: []byte{0x30, 1}}, ev)
		}},
	} {
		for _, d := range databases {
			t.Run(tc.name+"/"+d.name, func(t *testing.T) {
				if tc.during != nil && d.run == nil {
					t.Skip("each run must start from the same store: SQLite only")
				}
				where := d.where(t)
				s, err := d.open(ctx, where)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.CreateAuthority(ctx, store.Authority{Name: "ca", KeyURI: "pkcs11:object=ca", CertDER: []byte{0x30}}, ev); err != nil {
					t.Fatal(err)
				}
				for i := range 300 {
					c := store.Certificate{Serial: serial(i), Authority: "ca", DNSNames: []string{"host.example.org"},
						NotBefore: t0, NotAfter: t0.Add(time.Hour), DER: []byte{0x30, byte(i)}}
					if err := s.RecordCertificate(ctx, c, ev); err != nil {
						t.Fatal(err)
					}
					if i%10 == 5 {
						if err := s.Revoke(ctx, c.Serial, t0, 1, ev); err != nil {
							t.Fatal(err)
						}
					}
				}
				s.Close()
				if len(tc.edit) > 0 {
					db, err := sql.Open(d.driver, where)
					if err != nil {
						t.Fatal(err)
					}
					for _, q := range tc.edit {
						if _, err := db.Exec(q); err != nil {
							t.Fatalf("%s: %v", q, err)
						}
					}
					db.Close()
				}
				verify := func(passRows int) (audit.Report, int, error) {
					t.Helper()
					where := where
					if d.run != nil {
						where = d.run(t, where)
					}
					s, err := d.open(ctx, where)
					if err != nil {
						t.Fatal(err)
					}
					defer s.Close()
					audit.SetPassRows(t, passRows)
					cs := &countingStore{Store: s}
					if tc.during != nil {
						cs.before = func() {
							if err := tc.during(s); err != nil {
								t.Fatal(err)
							}
						}
					}
					rep, err := audit.Verify(ctx, cs)
					return rep, cs.passes, err
				}
				one, passes, oneErr := verify(1_000_000)
				if passes != 1 {
					t.Fatalf("%d passes over the rows; want 1", passes)
				}
				if (oneErr != nil) != (tc.count > 0) || oneErr != nil && errs.KindOf(oneErr) != errs.Rejected {
					t.Fatalf("one pass: %v; want %d row problems", oneErr, tc.count)
				}
				if one.RowProblemCount != tc.count || one.Rows < 298 || one.Certificates < 298 {
					t.Fatalf("one pass: %+v; want %d row problems over 300 certificates", one, tc.count)
				}
				for _, p := range one.RowProblems {
					if err := tc.check(p); err != nil {
						t.Errorf("problem %+v: %v", p, err)
					}
				}
				many, passes, manyErr := verify(16)
				if passes < 8 {
					t.Errorf("%d passes over the rows with 16 rows a pass; want at least 8", passes)
				}
				if !reflect.DeepEqual(one, many) || fmt.Sprint(oneErr) != fmt.Sprint(manyErr) {
					t.Errorf("in passes:\n%+v, %v\nin one:\n%+v, %v", many, manyErr, one, oneErr)
				}
			})
		}
	}
}

// TestVerifyInPassesSeesTheLogChange changes an event after the first pass
// read it: a later pass, reading the events again, reports the log broken
// there instead of comparing rows with events it did not check.
func TestVerifyInPassesSeesTheLogChange(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "signet.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recordCertificates(t, s, 100)
	audit.SetPassRows(t, 16)
	cs := &countingStore{Store: s, before: func() {
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec("DROP TRIGGER events_no_update; UPDATE events SET actor = 'mallory' WHERE seq = 50"); err != nil {
			t.Fatal(err)
		}
	}}
	rep, err := audit.Verify(ctx, cs)
	if errs.KindOf(err) != errs.Rejected || rep.BrokenSeq != 50 || !strings.Contains(rep.Reason, "changed") || cs.passes != 1 {
		t.Fatalf("Verify: %+v, %v after %d passes over the rows; want broken at event 50 after the first", rep, err, cs.passes)
	}
}

// TestVerifyInPassesReadsTheLogTwice verifies an intact store of 300
// certificates in passes of a few rows: the events are read once for the
// marks of every part and once more to see that they did not change, not
// once per pass (on a 10M home, 8 passes re-read 11M events each); the
// temporary file of marks is gone when it returns.
func TestVerifyInPassesReadsTheLogTwice(t *testing.T) {
	ctx := context.Background()
	for _, d := range databases {
		t.Run(d.name, func(t *testing.T) {
			s, err := d.open(ctx, d.where(t))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			recordCertificates(t, s, 300)
			audit.SetPassRows(t, 16)
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp) // where the marks are spilled
			cs := &countingStore{Store: s}
			rep, err := audit.Verify(ctx, cs)
			if err != nil || !rep.Intact() || rep.Rows != 301 || rep.Certificates != 300 {
				t.Fatalf("Verify: %+v, %v; want intact, 301 rows", rep, err)
			}
			if left, err := os.ReadDir(tmp); err != nil || len(left) > 0 {
				t.Fatalf("temporary files left: %v, %v", left, err)
			}
			if cs.passes < 8 || cs.reads != 2 {
				t.Fatalf("%d passes over the rows read the events %d times; want at least 8 passes and 2 reads", cs.passes, cs.reads)
			}
		})
	}
}

// recordCertificates records authority "ca" and n certificates of it, each
// with its event.
func recordCertificates(t *testing.T, s store.Store, n int) {
	t.Helper()
	ctx, ev := context.Background(), audit.Event{Actor: "test"}
	t0 := time.Date(2026, 12, 6, 1, 2, 3, 0, time.UTC)
	if err := s.CreateAuthority(ctx, store.Authority{Name: "ca", KeyURI: "pkcs11:object=ca", CertDER: []byte{0x30}}, ev); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		c := store.Certificate{Serial: fmt.Sprintf("%032x", i), Authority: "ca", DNSNames: []string{"host.example.org"},
			NotBefore: t0, NotAfter: t0.Add(time.Hour), DER: []byte{0x30, byte(i)}}
		if err := s.RecordCertificate(ctx, c, ev); err != nil {
			t.Fatal(err)
		}
	}
}
