package sqlite

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
	"signet/internal/store/sqlstore"
)

var ctx = context.Background()

func open(t testing.TB, path string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(ctx, path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fill writes an authority, n certificates and a key event, ending with a
// certificate so that the last event is a certificate.issue.
func fill(t *testing.T, s *Store, n int) {
	t.Helper()
	if err := s.CreateAuthority(ctx, store.Authority{Name: "ca", KeyURI: "pkcs11:object=ca"}, audit.Event{Actor: "cli"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendEvent(ctx, audit.Event{Kind: audit.KindKeyGenerate, Actor: "cli", Subject: "pkcs11:object=k"}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		c := store.Certificate{Serial: fmt.Sprintf("%04x", i+1), Authority: "ca", DNSNames: []string{"h.example.org"},
			NotBefore: time.Unix(1e9, 0), NotAfter: time.Unix(1e9+int64(i), 0), DER: []byte{0x30, 0x00}}
		if err := s.RecordCertificate(ctx, c, audit.Event{Actor: "api:t", Data: []byte(`{"i":1}`)}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReopenKeepsEverythingAndExtendsTheChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signet.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, s, 3)
	before, err := audit.Verify(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path)
	if _, err := s.Certificate(ctx, "0003"); err != nil {
		t.Fatalf("certificate lost across reopen: %v", err)
	}
	if err := s.AppendEvent(ctx, audit.Event{Kind: "note", Actor: "cli"}); err != nil {
		t.Fatal(err)
	}
	after, err := audit.Verify(ctx, s)
	if err != nil || after.Events != before.Events+1 || after.Certificates != 3 {
		t.Fatalf("after reopen: %+v, %v (before %+v)", after, err, before)
	}
}

// tamper opens the closed database with a plain connection, as someone with
// the file would, and runs SQL on it.
func tamper(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func TestTamperingIsCaught(t *testing.T) {
	const n = 5 // events: 1 authority, 2 key, 3..7 certificates 0001..0005
	dropGuards := []string{"DROP TRIGGER events_no_update", "DROP TRIGGER events_no_delete"}
	tests := []struct {
		name   string
		sql    []string
		seq    int64
		reason string
	}{
		{"event data edited", []string{`UPDATE events SET data = '{"i":2}' WHERE seq = 4`}, 4, "changed"},
		{"event time edited", []string{`UPDATE events SET time = time + 1 WHERE seq = 6`}, 6, "changed"},
		{"middle event deleted", []string{`DELETE FROM events WHERE seq = 5`}, 5, "missing"},
		{"last certificate's event deleted", []string{`DELETE FROM events WHERE seq = 7`}, 7, "log ends at event 6"},
		{"event deleted and certificate pointed elsewhere", []string{
			`DELETE FROM events WHERE seq = 7`, `UPDATE certificates SET issue_seq = 2 WHERE serial = '0005'`}, 2, "key.generate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "signet.db")
			s, err := Open(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			fill(t, s, n)
			s.Close()
			tamper(t, path, append(dropGuards, tt.sql...)...)

			s = open(t, path)
			rep, err := audit.Verify(ctx, s)
			if errs.KindOf(err) != errs.Rejected || rep.BrokenSeq != tt.seq || !strings.Contains(rep.Reason, tt.reason) {
				t.Fatalf("Verify: %+v, %v; want seq %d and %q", rep, err, tt.seq, tt.reason)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("seq %d", tt.seq)) {
				t.Errorf("error %q does not name seq %d", err, tt.seq)
			}
		})
	}
}

func TestEventsRefuseChangeWhileGuarded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signet.db")
	s := open(t, path)
	fill(t, s, 1)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{"UPDATE events SET actor = 'x' WHERE seq = 1", "DELETE FROM events WHERE seq = 3"} {
		if _, err := db.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want refused", q, err)
		}
	}
}

func TestFileIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signet.db")
	s := open(t, path)
	fill(t, s, 1)
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", p, fi.Mode().Perm())
		}
	}
}

func TestMigrationsAreIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signet.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, s, 1)
	s.Close()
	s = open(t, path) // applies nothing the second time
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := sqlstore.Migrate(ctx, &dialect, db, schema, time.Now()); err != nil {
		t.Fatalf("migrating an up-to-date database: %v", err)
	}
	var n, v int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*), MAX(version) FROM schema_migrations").Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	if n != len(migrations) || v != len(migrations) {
		t.Errorf("schema_migrations has %d rows up to version %d, want %d", n, v, len(migrations))
	}
	if _, err := audit.Verify(ctx, s); err != nil {
		t.Error(err)
	}
	// A database from a newer signet is refused rather than misread.
	older := schema
	older.Steps = migrations[:0]
	err = sqlstore.Migrate(ctx, &dialect, db, older, time.Now())
	if errs.KindOf(err) != errs.Unavailable || !strings.Contains(err.Error(), "newer") {
		t.Errorf("older code on a newer schema: %v", err)
	}
}

func TestOpenRefusesNonFilePaths(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db", "x.db?mode=ro"} {
		if _, err := Open(ctx, p); errs.KindOf(err) != errs.Malformed {
			t.Errorf("Open(%q): %v, want malformed", p, err)
		}
	}
}

// realisticDER is a real ECDSA P-256 leaf certificate of about 600 bytes.
func realisticDER(b testing.TB) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: new(big.Int).Lsh(big.NewInt(1), 150),
		Subject:      pkix.Name{CommonName: "xmpp.example.org", Organization: []string{"Example"}},
		DNSNames:     []string{"xmpp.example.org", "conference.example.org", "upload.example.org", "example.org"},
		IPAddresses:  []net.IP{net.ParseIP("192.0.2.10")},
		NotBefore:    time.Now(), NotAfter: time.Now().Add(30 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		CRLDistributionPoints: []string{"http://ca.example.org/crl/xmpp.crl"},
		OCSPServer:            []string{"http://ca.example.org/ocsp"},
		AuthorityKeyId:        make([]byte, 20), SubjectKeyId: make([]byte, 20),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	return der
}

// BenchmarkRecordCertificate measures durable recording with a given number
// of issuance requests in flight: each waits for its own commit, so the
// throughput of group commit grows with how many wait at once.
func BenchmarkRecordCertificate(b *testing.B) {
	for _, inflight := range []int{16, 64, 256} {
		b.Run(fmt.Sprintf("inflight=%d", inflight), func(b *testing.B) { benchmarkRecord(b, inflight) })
	}
}

func benchmarkRecord(b *testing.B, inflight int) {
	s := open(b, filepath.Join(b.TempDir(), "signet.db"))
	if err := s.CreateAuthority(ctx, store.Authority{Name: "xmpp", KeyURI: "pkcs11:object=xmpp"}, audit.Event{Actor: "cli"}); err != nil {
		b.Fatal(err)
	}
	der := realisticDER(b)
	var next atomic.Int64
	b0, c0 := s.WriteStats()
	b.SetParallelism(max(1, inflight/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := next.Add(1)
			c := store.Certificate{
				Serial: fmt.Sprintf("%032x", n), Authority: "xmpp", Subject: "CN=xmpp.example.org",
				DNSNames:    []string{"xmpp.example.org", "conference.example.org", "upload.example.org", "example.org"},
				IPAddresses: []string{"192.0.2.10"}, NotBefore: time.Now(), NotAfter: time.Now().Add(720 * time.Hour),
				Status: store.Valid, Requester: "acme:1", DER: der,
			}
			ev := audit.Event{Actor: "acme:1", Data: []byte(`{"profile":"xmpp","names":4}`)}
			if err := s.RecordCertificate(ctx, c, ev); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
	if b1, c1 := s.WriteStats(); b1 > b0 {
		b.ReportMetric(float64(c1-c0)/float64(b1-b0), "certs/commit")
	}
	b.ReportMetric(float64(len(der)), "DER-bytes")
}

func TestCancelledWriteIsNotRecorded(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "signet.db"))
	fill(t, s, 0)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	c := store.Certificate{Serial: "01", Authority: "ca", NotBefore: time.Unix(1, 0), NotAfter: time.Unix(2, 0), DER: []byte{0x30}}
	if err := s.RecordCertificate(cctx, c, audit.Event{Actor: "t"}); errs.KindOf(err) != errs.Unavailable {
		t.Fatalf("cancelled write: %v", err)
	}
	if _, err := s.Certificate(ctx, "01"); errs.KindOf(err) != errs.NotFound {
		t.Errorf("cancelled write was recorded: %v", err)
	}
}

// TestDurableSettings checks the pragmas that make an acknowledged write
// survive a power cut: WAL with an fsync at every commit.
// Every connection of the writer's pool is set up alike: this takes one
// more.
func TestDurableSettings(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "signet.db"))
	s.write.SetMaxOpenConns(3)
	conn, err := s.write.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var mode string
	var sync, fk, autocheckpoint int
	for q, v := range map[string]any{"journal_mode": &mode, "synchronous": &sync, "foreign_keys": &fk, "wal_autocheckpoint": &autocheckpoint} {
		if err := conn.QueryRowContext(ctx, "PRAGMA "+q).Scan(v); err != nil {
			t.Fatal(err)
		}
	}
	if mode != "wal" || sync != 2 || fk != 1 || autocheckpoint != 16384 {
		t.Errorf("journal_mode %s, synchronous %d, foreign_keys %d, wal_autocheckpoint %d; want wal, 2 (FULL), 1, 16384",
			mode, sync, fk, autocheckpoint)
	}
}

// A broken UNIQUE constraint is a conflict, as a PRIMARY KEY one is (and as
// PostgreSQL's unique_violation is), not an internal error.
func TestUniqueViolationIsAConflict(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "u.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{"CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER UNIQUE)", "INSERT INTO t VALUES (1, 1)"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{"INSERT INTO t VALUES (1, 2)", "INSERT INTO t VALUES (2, 1)"} {
		_, err := db.Exec(q)
		if err := dialect.Error(err, "row"); errs.KindOf(err) != errs.Conflict {
			t.Errorf("%s: %v, want a conflict", q, err)
		}
	}
}

// A full disk is Unavailable (503 with Retry-After over HTTP), as a lost
// or exhausted PostgreSQL is, not an internal error: here the database
// may not grow past its first pages.
func TestFullDiskIsUnavailable(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "full.db")+"?_pragma=max_page_count(2)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	_, err = db.Exec("CREATE TABLE t (v BLOB)")
	for i := 0; err == nil && i < 10; i++ {
		_, err = db.Exec("INSERT INTO t VALUES (randomblob(2000))")
	}
	if err == nil {
		t.Fatal("the database grew past max_page_count")
	}
	err = dialect.Error(err, "row")
	if errs.KindOf(err) != errs.Unavailable || !strings.Contains(err.Error(), "database or disk is full") {
		t.Errorf("write to a full database: %v, want unavailable", err)
	}
}

// TestLockedFileIsUnavailable: while another process holds the file's
// write lock past the busy timeout, writes fail as Unavailable (503 with
// Retry-After over HTTP) and change nothing; once it lets go, the writer
// works again on a new connection.
func TestLockedFileIsUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signet.db")
	s := open(t, path, WithBusyTimeout(50*time.Millisecond))
	fill(t, s, 1)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	err = s.AppendEvent(ctx, audit.Event{Kind: "note", Actor: "t"})
	if errs.KindOf(err) != errs.Unavailable || !strings.Contains(err.Error(), "database is locked") {
		t.Errorf("write while the file is locked: %v, want unavailable", err)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendEvent(ctx, audit.Event{Kind: "note", Actor: "t"}); err != nil {
		t.Fatalf("write after the lock is gone: %v", err)
	}
	if rep, err := audit.Verify(ctx, s); err != nil || rep.Events != 4 {
		t.Errorf("audit.Verify: %+v, %v; want 4 events", rep, err)
	}
}

// TestCheckpoint checks that Checkpoint copies the WAL into the database
// file at once, with the background checkpointer asleep.
func TestCheckpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signet.db")
	s := open(t, path, withCheckpointEvery(time.Hour))
	fill(t, s, 200)
	size := func() int64 {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size()
	if err := s.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if after := size(); after <= before {
		t.Errorf("database file %d bytes before the checkpoint, %d after: nothing copied", before, after)
	}
	s.Close()
	if err := s.Checkpoint(ctx); errs.KindOf(err) != errs.Unavailable {
		t.Errorf("checkpoint of a closed store: %v, want unavailable", err)
	}
}

// TestWALStaysBounded: under writes that never pause, the WAL starts over
// once it holds the restart length, instead of growing with everything
// written (the background PASSIVE checkpoint alone never catches up with
// the writer: this test saw a 134 MB WAL beside an 18 MB database).
func TestWALStaysBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "signet.db")
	const restart = 1000
	s := open(t, path, withCheckpointEvery(time.Millisecond), withRestartFrames(restart))
	fill(t, s, 0)
	der := make([]byte, 3000) // about a page per certificate
	var wg sync.WaitGroup
	var failed atomic.Value
	for w := range 8 {
		wg.Go(func() {
			for i := range 500 {
				c := store.Certificate{Serial: fmt.Sprintf("%02x%04x", w+1, i), Authority: "ca", DNSNames: []string{"h.example.org"},
					NotBefore: time.Unix(1e9, 0), NotAfter: time.Unix(2e9, 0), DER: der}
				if err := s.RecordCertificate(ctx, c, audit.Event{Actor: "api:t"}); err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
	db, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	wal, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	// The WAL reaches the restart length plus one group commit's batch;
	// 4,000 certificates with their indexes and events are many times that.
	if limit := int64(4 * restart * (4096 + 24)); wal.Size() > limit {
		t.Errorf("WAL %d bytes after writing a %d-byte database under steady writes, want at most %d (restart at %d frames)",
			wal.Size(), db.Size(), limit, restart)
	}
}
