package sqlstore_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/metrics"
	"signet/internal/metrics/metricstest"
	"signet/internal/store"
	"signet/internal/store/postgres"
	"signet/internal/store/postgres/pgtest"
	"signet/internal/store/sqlite"
	"signet/internal/store/sqlstore"
	"signet/internal/store/storetest"
)

var ctx = context.Background()

// testStore is a store under test: the common code, and Close of the
// backend that opened it.
type testStore struct {
	*sqlstore.Store
	close func() error
}

func (s testStore) Close() error { return s.close() }

// backend is one database the writer's tests run on: where makes a new,
// empty database, open opens one (closed when the test ends), exec runs
// statements on one with a connection of its own, as someone with the
// database would.
type backend struct {
	name  string
	where func(t testing.TB) string
	open  func(t *testing.T, where string) testStore
	exec  func(t *testing.T, where string, stmts ...string)
}

// execWith runs stmts on a connection to where of the database/sql driver.
func execWith(driver string) func(t *testing.T, where string, stmts ...string) {
	return func(t *testing.T, where string, stmts ...string) {
		t.Helper()
		db, err := sql.Open(driver, where)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, q := range stmts {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
}

var backends = []backend{
	{"sqlite", func(t testing.TB) string { return filepath.Join(t.TempDir(), "signet.db") },
		func(t *testing.T, where string) testStore {
			t.Helper()
			s, err := sqlite.Open(ctx, where)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return testStore{s.Store, s.Close}
		}, execWith("sqlite")},
	{"postgres", pgtest.URL, func(t *testing.T, where string) testStore {
		t.Helper()
		s, err := postgres.Open(ctx, where)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return testStore{s.Store, s.Close}
	}, execWith("pgx")},
}

// onEach runs test on every backend, with the address of a new database.
func onEach(t *testing.T, test func(t *testing.T, b backend, where string)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, b, b.where(t)) })
	}
}

// TestConformance runs the conformance suite on every backend.
func TestConformance(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) store.Store { return b.open(t, b.where(t)) })
		})
	}
}

// TestMigrationRevokesKeyIDsRevokedEarlier opens a database made before
// the migration that revokes the certificates of revoked key IDs: a
// certificate recorded as valid with a key ID that was revoked before,
// which the KRL refuses, is marked revoked.
func TestMigrationRevokesKeyIDsRevokedEarlier(t *testing.T) {
	onEach(t, func(t *testing.T, b backend, where string) {
		s := b.open(t, where)
		storetest.KeyIDRevokedEarlier(t, s)
		s.Close()
		// Back to before the key-ID step: it and the steps after it undone
		// (internal certificates, row hashes, rate limit counts, enabled; undoing
		// row hashes asks for a baseline again).
		step := map[string]string{"sqlite": "6", "postgres": "5"}[b.name]
		b.exec(t, where, append(undoAfterInternal(b.name),
			"UPDATE ssh_certificates SET key_id = 'alice' WHERE serial = 3",
			"DROP INDEX ssh_certificates_revoked_key_ids",
			"DELETE FROM schema_migrations WHERE version >= "+step)...)
		storetest.CheckKeyIDRevokedEarlier(t, b.open(t, where))
	})
}

// undoAfterInternal undoes, newest first, the step that adds
// certificates.internal and every step after it: row hashes in events and
// the rate limits' order counts, authorities' enabled, the events' subject index,
// operators, the orders' reusable authorizations, console sessions,
// the certificates' authority and status index, the endpoint checks, the
// OCSP responses' nextUpdate index, the console sessions' certificate, the accounts' order indexes,
// the revocation events' index, the events' time index.
func undoAfterInternal(backend string) []string {
	return append([]string{"DROP INDEX events_time", "DROP INDEX events_revocations", "DROP INDEX acme_orders_account_created", "DROP INDEX acme_orders_account_pending",
		"CREATE INDEX acme_orders_account_expires ON acme_orders(account_id, expires)", "ALTER TABLE console_sessions DROP COLUMN certificate", "DROP INDEX ocsp_responses_next_update", "DROP TABLE endpoint_checks", "DROP INDEX certificates_authority_status", "DROP TABLE console_sessions", "DROP TABLE acme_reusable_authzs", "DROP TABLE operators", "DROP INDEX events_subject", "ALTER TABLE authorities DROP COLUMN enabled", "DROP INDEX acme_orders_account_expires", "ALTER TABLE acme_orders DROP COLUMN pending_authzs",
		"ALTER TABLE events DROP COLUMN state", "DROP TABLE audit_baseline"}, undoInternal[backend]...)
}

// undoInternal undoes the step that adds certificates.internal (and, on
// SQLite, the revocation tables).
var undoInternal = map[string][]string{
	"sqlite": {"ALTER TABLE certificates DROP COLUMN internal", "DROP TABLE published_crls",
		"DROP TABLE ocsp_responses", "DROP TABLE revocation_version"},
	"postgres": {"ALTER TABLE certificates DROP COLUMN internal"},
}

// TestMigrationMarksInternalCertificates opens a database made before
// certificates.internal: serve's certificates (requester "server") and OCSP
// responder certificates (requester "revocation", subject "CN=OCSP ...")
// are marked internal, and listings leave them out.
func TestMigrationMarksInternalCertificates(t *testing.T) {
	onEach(t, func(t *testing.T, b backend, where string) {
		s := b.open(t, where)
		if err := s.CreateAuthority(ctx, store.Authority{Name: "ca", KeyURI: "pkcs11:object=ca"}, audit.Event{Actor: "cli"}); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		for _, c := range []struct{ serial, requester, subject string }{
			{"01", "server", "CN=localhost"}, {"02", "revocation", "CN=OCSP ca"}, {"03", "cli", "CN=OCSP lookalike"},
		} {
			err := s.RecordCertificate(ctx, store.Certificate{Serial: c.serial, Authority: "ca", Subject: c.subject,
				NotBefore: t0, NotAfter: t0.Add(time.Hour), Requester: c.requester, DER: []byte{0x30}}, audit.Event{Actor: c.requester})
			if err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		step := map[string]string{"sqlite": "7", "postgres": "6"}[b.name]
		b.exec(t, where, append(undoAfterInternal(b.name),
			"DELETE FROM schema_migrations WHERE version >= "+step)...)
		s = b.open(t, where)
		for _, tt := range []struct {
			f    store.Filter
			want string
		}{{store.Filter{}, "03"}, {store.Filter{WithInternal: true}, "01 02 03"}} {
			got, err := s.Certificates(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var serials []string
			for _, c := range got {
				serials = append(serials, c.Serial)
				if c.Internal != (c.Serial != "03") {
					t.Errorf("certificate %s: internal %v", c.Serial, c.Internal)
				}
			}
			if fmt.Sprint(serials) != "["+tt.want+"]" {
				t.Errorf("%+v: %v, want [%s]", tt.f, serials, tt.want)
			}
		}
	})
}

// TestMigrationEndsConsoleSessions opens a database made before console
// sessions remembered their client certificate: a session stored then
// cannot say how it signed in, so the migration ends it.
func TestMigrationEndsConsoleSessions(t *testing.T) {
	onEach(t, func(t *testing.T, b backend, where string) {
		s := b.open(t, where)
		id := []byte("0123456789abcdef0123456789abcdef")
		now := time.Now()
		if err := s.CreateConsoleSession(ctx, store.ConsoleSession{IDHash: id, Operator: "alice", Role: "admin",
			CreatedAt: now, SeenAt: now}); err != nil {
			t.Fatal(err)
		}
		s.Close()
		undo := undoAfterInternal(b.name)
		through := slices.Index(undo, "ALTER TABLE console_sessions DROP COLUMN certificate")
		step := map[string]string{"sqlite": "18", "postgres": "17"}[b.name]
		b.exec(t, where, append(undo[:through+1], "DELETE FROM schema_migrations WHERE version >= "+step)...)
		s = b.open(t, where)
		if got, err := s.ConsoleSession(ctx, id); errs.KindOf(err) != errs.NotFound {
			t.Fatalf("session stored before the migration: %+v, %v; want it ended", got, err)
		}
	})
}

// fill writes an authority and a key event.
func fill(t *testing.T, s testStore) {
	t.Helper()
	if err := s.CreateAuthority(ctx, store.Authority{Name: "ca", KeyURI: "pkcs11:object=ca"}, audit.Event{Actor: "cli"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendEvent(ctx, audit.Event{Kind: audit.KindKeyGenerate, Actor: "cli", Subject: "pkcs11:object=k"}); err != nil {
		t.Fatal(err)
	}
}

// holdWriter makes the writer wait inside a request of its own, in a
// batch of that request alone, until release is called: writes sent
// meanwhile queue up and are taken together when it is.
func holdWriter(t *testing.T, s testStore) (release func()) {
	t.Helper()
	taken, free := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- s.Do(ctx, func(*sqlstore.Tx) error { close(taken); <-free; return nil }, func(*sqlstore.Tx) error { return nil })
	}()
	<-taken // the writer collected its batch before running this check
	return func() {
		t.Helper()
		close(free)
		if err := <-held; err != nil {
			t.Fatal(err)
		}
	}
}

// waitQueued waits until n writes are queued.
func waitQueued(t *testing.T, s testStore, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); s.Queued() != n; time.Sleep(100 * time.Microsecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d writes queued", s.Queued(), n)
		}
	}
}

// inOneBatch runs each write concurrently while the writer is held, so
// that they all share the next transaction, and returns their outcomes and
// whether the batch had to be run again with savepoints.
func inOneBatch(t *testing.T, s testStore, writes []func() error) ([]error, bool) {
	t.Helper()
	release := holdWriter(t, s)
	out := make([]error, len(writes))
	done := make(chan int, len(writes))
	for i, w := range writes {
		go func() { out[i] = w(); done <- i }()
		waitQueued(t, s, i+1)
	}
	b0, _ := s.WriteStats()
	r0 := s.Reruns()
	release()
	for range writes {
		<-done
	}
	// The holding request's transaction, then theirs.
	if b, _ := s.WriteStats(); b-b0 != 2 {
		t.Errorf("the writes took %d transactions, want 1", b-b0-1)
	}
	return out, s.Reruns() != r0
}

// succeeds stands in checkBatch's want for a write that returns no error.
const succeeds = errs.Kind(-1)

// checkBatch compares the outcomes of inOneBatch with the error kinds
// wanted of each write and whether the batch was to be run again.
func checkBatch(t *testing.T, got []error, reran bool, want []errs.Kind, rerun bool) {
	t.Helper()
	for i, err := range got {
		if (err == nil) != (want[i] == succeeds) || err != nil && errs.KindOf(err) != want[i] {
			t.Errorf("write %d: %v, want %d", i, err, want[i])
		}
	}
	if reran != rerun {
		t.Errorf("batch run again with savepoints: %v, want %v", reran, rerun)
	}
}

// TestWritesAreGroupCommitted checks that concurrent writers share
// transactions, and that Close lets every queued write finish.
func TestWritesAreGroupCommitted(t *testing.T) {
	onEach(t, func(t *testing.T, b backend, where string) {
		s := b.open(t, where)
		fill(t, s)
		record := func(serial string) func() error {
			return func() error {
				c := store.Certificate{Serial: serial, Authority: "ca", NotBefore: time.Unix(1, 0), NotAfter: time.Unix(2, 0), DER: []byte{0x30}}
				return s.RecordCertificate(ctx, c, audit.Event{Actor: "t"})
			}
		}
		const n = 64
		// Writes queued while the writer is busy share its next transaction
		// (inOneBatch fails the test otherwise).
		var writes []func() error
		for i := range n {
			writes = append(writes, record(fmt.Sprintf("01%02x", i)))
		}
		got, _ := inOneBatch(t, s, writes)
		for i, err := range got {
			if err != nil {
				t.Errorf("write %d: %v", i, err)
			}
		}

		// Close while writes are queued: each of them still commits.
		release := holdWriter(t, s)
		results := make(chan error, n)
		for i := range n {
			go func() { results <- record(fmt.Sprintf("02%02x", i))() }()
		}
		waitQueued(t, s, n)
		closed := make(chan error, 1)
		go func() { closed <- s.Close() }()
		for !s.Closing() {
			time.Sleep(100 * time.Microsecond)
		}
		release()
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
		for range n {
			if err := <-results; err != nil {
				t.Errorf("write queued before Close: %v", err)
			}
		}

		// Every acknowledged write survived Close.
		s2 := b.open(t, where)
		all, err := s2.Certificates(ctx, store.Filter{})
		if err != nil || len(all) != 2*n {
			t.Fatalf("%d certificates after reopen, %d acknowledged (%v)", len(all), 2*n, err)
		}
		if _, err := audit.Verify(ctx, s2); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendEvent(ctx, audit.Event{Kind: "x", Actor: "y"}); errs.KindOf(err) != errs.Unavailable {
			t.Errorf("write after Close: %v, want unavailable", err)
		}
	})
}

// TestFailedApplyFailsOnlyItsCaller forces a write to fail after it wrote
// (the case checks cannot foresee) in the middle of a batch: the batch is
// rerun with savepoints, the others commit, and the chain has no hole.
func TestFailedApplyFailsOnlyItsCaller(t *testing.T) {
	onEach(t, func(t *testing.T, b backend, where string) {
		s := b.open(t, where)
		fill(t, s)
		release := holdWriter(t, s)
		boom := errs.New(errs.Internal, "disk on fire")
		results := make([]chan error, 5)
		for i := range results {
			results[i] = make(chan error, 1)
			go func() {
				if i == 2 {
					results[i] <- s.Do(ctx, func(*sqlstore.Tx) error { return nil }, func(t *sqlstore.Tx) error {
						ev := audit.Event{Kind: "half", Actor: "t"}
						if err := t.AppendEvent(&ev); err != nil {
							return err
						}
						return boom
					})
					return
				}
				c := store.Certificate{Serial: fmt.Sprintf("c%d", i), Authority: "ca", NotBefore: time.Unix(1, 0), NotAfter: time.Unix(2, 0), DER: []byte{0x30}}
				results[i] <- s.RecordCertificate(ctx, c, audit.Event{Actor: "t"})
			}()
		}
		waitQueued(t, s, len(results))
		before, _ := s.WriteStats()
		release()
		for i, ch := range results {
			err := <-ch
			if (i == 2) != (err != nil) || (i == 2 && err != boom) {
				t.Errorf("request %d: %v", i, err)
			}
		}
		if n, _ := s.WriteStats(); n-before != 2 {
			t.Errorf("%d transactions after the held one, want 2 (the held batch, then the five together)", n-before)
		}
		rep, err := audit.Verify(ctx, s)
		if err != nil || rep.Certificates != 4 || rep.Events != 2+4 {
			t.Fatalf("Verify: %+v, %v", rep, err)
		}
		if err := s.Events(ctx, func(e audit.Event) error {
			if e.Kind == "half" {
				return fmt.Errorf("the failed write's event %d was committed", e.Seq)
			}
			return nil
		}); err != nil {
			t.Error(err)
		}
	})
}

// TestStagedBatchIsolatesFailures puts staged SSH certificate inserts, a
// duplicate serial (staged: found only at the flush), a certificate of a key
// retired earlier in the same batch, and a revocation of a certificate
// staged earlier in the batch into one transaction: each failure must be
// its caller's alone, and the rest must be durable with a whole audit chain.
func TestStagedBatchIsolatesFailures(t *testing.T) {
	onEach(t, func(t *testing.T, b backend, where string) {
		s := b.open(t, where)
		a := store.Authority{Name: "users", Purpose: "ssh-user", KeyURI: "file:one.key",
			Policy: json.RawMessage(`{}`), DefaultValidity: time.Hour, MaxValidity: 24 * time.Hour}
		key := func(fp string) store.SSHKey {
			return store.SSHKey{Authority: "users", Fingerprint: "SHA256:" + fp, KeyURI: "file:" + fp + ".key", PublicKey: "ssh-ed25519 AAAA" + fp}
		}
		if err := s.CreateSSHAuthority(ctx, a, key("one"), audit.Event{Actor: "cli"}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddSSHKey(ctx, store.SSHKey{Authority: "users", Fingerprint: "SHA256:two", KeyURI: "file:two.key",
			PublicKey: "ssh-ed25519 AAAAtwo", State: store.SSHKeyActive}, audit.Event{Actor: "cli"}); err != nil {
			t.Fatal(err)
		}
		cert := func(serial uint64, fp string) func() error {
			return func() error {
				c := store.SSHCertificate{Serial: serial, Authority: "users", CAFingerprint: "SHA256:" + fp, KeyID: "k",
					Type: store.SSHUserCert, Principals: []string{"alice"}, ValidAfter: time.Unix(1, 0), ValidBefore: time.Unix(2, 0),
					Requester: "t", Cert: []byte{1, 2, 3}}
				return s.RecordSSHCertificate(ctx, c, audit.Event{Actor: "t"})
			}
		}
		if err := cert(1, "two")(); err != nil {
			t.Fatal(err)
		}
		batch := func(want []errs.Kind, rerun bool, writes ...func() error) {
			t.Helper()
			got, reran := inOneBatch(t, s, writes)
			checkBatch(t, got, reran, want, rerun)
		}
		// Failures found by checks leave the fast path alone.
		batch([]errs.Kind{succeeds, succeeds, errs.Conflict, succeeds, succeeds, errs.Conflict, errs.NotFound}, false,
			cert(2, "two"),
			cert(3, "two"),
			cert(5, "one"), // not the active key
			func() error { return s.RevokeSSHCertificate(ctx, 3, time.Unix(3, 0), audit.Event{Actor: "t"}) },
			func() error {
				return s.SetSSHKeyState(ctx, "users", "SHA256:two", store.SSHKeyTrusted, audit.Event{Actor: "cli"})
			},
			cert(6, "two"), // its key was demoted just before
			cert(7, "nine"),
		)
		if err := s.SetSSHKeyState(ctx, "users", "SHA256:two", store.SSHKeyActive, audit.Event{Actor: "cli"}); err != nil {
			t.Fatal(err)
		}
		// Taken serials are found when the staged rows are inserted.
		batch([]errs.Kind{errs.Conflict, succeeds, errs.Conflict, succeeds}, true,
			cert(1, "two"), // taken before this batch
			cert(4, "two"),
			cert(4, "two"), // taken earlier in this batch
			cert(8, "two"),
		)
		s.Close()
		s = b.open(t, where)
		for serial, status := range map[uint64]store.Status{1: store.Valid, 2: store.Valid, 3: store.Revoked, 4: store.Valid, 8: store.Valid} {
			c, err := s.SSHCertificate(ctx, serial)
			if err != nil || c.Status != status {
				t.Errorf("certificate %d: %v, %v; want %s", serial, c.Status, err, status)
			}
		}
		for _, serial := range []uint64{5, 6, 7} {
			if _, err := s.SSHCertificate(ctx, serial); errs.KindOf(err) != errs.NotFound {
				t.Errorf("certificate %d: %v, want not found", serial, err)
			}
		}
		if _, err := audit.Verify(ctx, s); err != nil {
			t.Fatal(err)
		}
	})
}

// TestStagedX509Batch does the same for X.509 certificates: a revocation
// and a new authority see the rows staged before them; a duplicate serial
// and a missing authority fail only their callers.
func TestStagedX509Batch(t *testing.T) {
	onEach(t, func(t *testing.T, b backend, where string) {
		s := b.open(t, where)
		if err := s.CreateAuthority(ctx, store.Authority{Name: "ca", KeyURI: "pkcs11:object=ca"}, audit.Event{Actor: "cli"}); err != nil {
			t.Fatal(err)
		}
		cert := func(serial, authority string) func() error {
			return func() error {
				c := store.Certificate{Serial: serial, Authority: authority, DNSNames: []string{"a.example.org", "b.example.org"},
					NotBefore: time.Unix(1, 0), NotAfter: time.Unix(2, 0), DER: []byte{0x30, 0x00}}
				return s.RecordCertificate(ctx, c, audit.Event{Actor: "t"})
			}
		}
		got, reran := inOneBatch(t, s, []func() error{
			cert("01", "ca"),
			cert("02", "nobody"),
			func() error { return s.Revoke(ctx, "01", time.Unix(3, 0), 1, audit.Event{Actor: "t"}) },
			func() error {
				return s.CreateAuthority(ctx, store.Authority{Name: "new", KeyURI: "pkcs11:object=new"}, audit.Event{Actor: "cli"})
			},
			cert("03", "new"),
		})
		checkBatch(t, got, reran, []errs.Kind{succeeds, errs.NotFound, succeeds, succeeds, succeeds}, false)
		got, reran = inOneBatch(t, s, []func() error{cert("04", "ca"), cert("01", "ca"), cert("04", "new"), cert("05", "new")})
		checkBatch(t, got, reran, []errs.Kind{succeeds, errs.Conflict, errs.Conflict, succeeds}, true)

		s.Close()
		s = b.open(t, where)
		all, err := s.Certificates(ctx, store.Filter{})
		if err != nil || len(all) != 4 {
			t.Fatalf("%d certificates, want 4 (%v)", len(all), err)
		}
		for _, c := range all {
			if c.Serial == "01" && c.Status != store.Revoked || len(c.DNSNames) != 2 {
				t.Errorf("certificate %s: %s, names %v", c.Serial, c.Status, c.DNSNames)
			}
		}
		if named, err := s.Certificates(ctx, store.Filter{Name: "b.example.org"}); err != nil || len(named) != 4 {
			t.Errorf("%d certificates named b.example.org, want 4 (%v)", len(named), err)
		}
		if _, err := audit.Verify(ctx, s); err != nil {
			t.Fatal(err)
		}
	})
}

// TestUpdateOrderRefusesAStaleVersion: the update itself refuses an order
// that moved past the version it was read at, even when no check ran
// before it (another process wrote between them).
func TestUpdateOrderRefusesAStaleVersion(t *testing.T) {
	onEach(t, func(t *testing.T, b backend, where string) {
		s := b.open(t, where)
		if err := s.CreateAuthority(ctx, store.Authority{Name: "ca", KeyURI: "pkcs11:object=ca"}, audit.Event{Actor: "cli"}); err != nil {
			t.Fatal(err)
		}
		a := store.ACMEAccount{ID: "a1", Authority: "ca", KeyID: "k1", Key: []byte(`{}`), Status: store.StatusValid, CreatedAt: time.Unix(1, 0)}
		if err := s.CreateACMEAccount(ctx, a, audit.Event{Actor: "acme"}); err != nil {
			t.Fatal(err)
		}
		o := store.ACMEOrder{ID: "o1", Authority: "ca", AccountID: "a1", Status: store.StatusPending, Expires: time.Unix(3600, 0),
			Identifiers: []store.ACMEIdentifier{{Type: "dns", Value: "h.example.org"}}, CreatedAt: time.Unix(1, 0)}
		if err := s.CreateACMEOrder(ctx, o, audit.Event{}); err != nil {
			t.Fatal(err)
		}
		o, err := s.ACMEOrder(ctx, "o1")
		if err != nil {
			t.Fatal(err)
		}
		stale := o
		o.Status = store.StatusReady
		if err := s.UpdateACMEOrder(ctx, o, audit.Event{Kind: audit.KindACMEAuthzValidate}); err != nil {
			t.Fatal(err)
		}
		err = s.Do(ctx, func(*sqlstore.Tx) error { return nil }, func(t *sqlstore.Tx) error { return t.UpdateOrder(stale) })
		if errs.KindOf(err) != errs.Conflict {
			t.Fatalf("update of a stale order: %v, want a conflict", err)
		}
		if got, err := s.ACMEOrder(ctx, "o1"); err != nil || got.Status != store.StatusReady {
			t.Fatalf("order after the refused update: %v, %v", got.Status, err)
		}
	})
}

// TestCommitMetrics: the writer tells its observer of each transaction
// and how many writes it took: a held write alone, then the five queued
// meanwhile together.
func TestCommitMetrics(t *testing.T) {
	onEach(t, func(t *testing.T, b backend, where string) {
		s := b.open(t, where)
		reg := metrics.New()
		s.ObserveCommits(reg)
		before := metricstest.Scrape(t, reg)
		release := holdWriter(t, s)
		done := make(chan error, 5)
		for i := range 5 {
			go func() {
				done <- s.AppendEvent(ctx, audit.Event{Kind: audit.KindKeyGenerate, Actor: "cli", Subject: fmt.Sprintf("pkcs11:object=k%d", i)})
			}()
			waitQueued(t, s, i+1)
		}
		release()
		for range 5 {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		after := metricstest.Scrape(t, reg)
		ok := map[string]string{"outcome": "ok"}
		if d := metricstest.Sum(after, "signet_store_commit_duration_seconds", ok) - metricstest.Sum(before, "signet_store_commit_duration_seconds", ok); d != 2 {
			t.Errorf("commits moved by %v, want 2", d)
		}
		if d := metricstest.Sum(after, "signet_store_commit_batch_size", nil) - metricstest.Sum(before, "signet_store_commit_batch_size", nil); d != 2 {
			t.Errorf("batch sizes observed moved by %v, want 2", d)
		}
		if d := metricstest.HistogramSum(after, "signet_store_commit_batch_size", nil) - metricstest.HistogramSum(before, "signet_store_commit_batch_size", nil); d != 6 {
			t.Errorf("writes in the batches moved by %v, want 6 (1 held, then 5)", d)
		}
	})
}
