// Package sqlite is the single-node store: one SQLite file in WAL mode with
// synchronous=FULL, written by one group-committing goroutine and read
// through a pool of read-only connections that never wait for it.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
	"signet/internal/store/columns"
)

// Store is a store.Store in one SQLite file.
type Store struct {
	now    func() time.Time
	read   *sql.DB
	write  *sql.DB
	w      *writer
	cp     *checkpointer
	stmts  sync.Map // read query text -> *sql.Stmt
	closer sync.Once
}

var _ store.Store = (*Store)(nil)

// Option changes how Open sets up the store.
type Option func(*options)

type options struct {
	now             func() time.Time
	maxBatch        int
	readers         int
	busyTimeout     time.Duration
	checkpointEvery time.Duration
}

// WithClock sets the clock that stamps events given without a time.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithMaxBatch caps how many writes share one transaction (default 512).
func WithMaxBatch(n int) Option { return func(o *options) { o.maxBatch = max(n, 1) } }

// WithReaders sets the size of the read connection pool (default
// 4×GOMAXPROCS, at least 8; audit.Verify holds two at once).
func WithReaders(n int) Option { return func(o *options) { o.readers = max(n, 2) } }

// WithBusyTimeout sets how long a connection waits for a lock held by
// another process (default 10s).
func WithBusyTimeout(d time.Duration) Option { return func(o *options) { o.busyTimeout = d } }

// withCheckpointEvery sets the background checkpointer's interval (tests).
func withCheckpointEvery(d time.Duration) Option { return func(o *options) { o.checkpointEvery = d } }

// Open opens or creates the database at path (created with mode 0600) and
// brings its schema up to date.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	o := options{now: time.Now, maxBatch: 512, readers: max(8, 4*runtime.GOMAXPROCS(0)), busyTimeout: 10 * time.Second,
		checkpointEvery: 100 * time.Millisecond}
	for _, opt := range opts {
		opt(&o)
	}
	if path == "" || path == ":memory:" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") {
		return nil, errs.New(errs.Malformed, "sqlite store path %q must be a plain file name", path)
	}
	// SQLite would create the file with the umask's mode; the CA's state is
	// not for other users. The -wal and -shm files inherit this mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "open database %s", path)
	}
	f.Close()

	// The writer's connections (the writer's and the checkpointer's) are
	// durable: WAL, fsync at every commit. Statement journals of the per-write
	// savepoints stay in memory. Their page cache is SQLite's default 2 MiB:
	// the writer touches the newest pages of each index and a few it
	// updates, the OS caches the file, and a 32 MiB cache measured no faster
	// once full, slower while it filled (each new page a fresh page fault),
	// and held 30 MiB more per process (BENCHMARKS.md).
	busy := "&_pragma=busy_timeout(" + itoa(o.busyTimeout.Milliseconds()) + ")"
	s := &Store{now: o.now}
	fail := func(err error) (*Store, error) {
		s.Close()
		return nil, err
	}
	s.write, err = sql.Open("sqlite", path+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)"+
		"&_pragma=temp_store(MEMORY)&_pragma=cache_size(-2000)"+busy)
	if err != nil {
		return fail(errs.Wrap(errs.Unavailable, err, "open database %s", path))
	}
	s.write.SetMaxOpenConns(2)
	conn, err := s.write.Conn(ctx)
	if err == nil {
		_, err = conn.ExecContext(ctx, "PRAGMA wal_autocheckpoint = 0")
	}
	if err != nil {
		return fail(errs.Wrap(errs.Unavailable, err, "open database %s", path))
	}
	if err := migrate(ctx, conn, migrations, o.now()); err != nil {
		conn.Close()
		return fail(err)
	}
	if s.w, err = newWriter(ctx, conn, o.maxBatch, o.now); err != nil {
		conn.Close()
		return fail(err)
	}
	cpConn, err := s.write.Conn(ctx)
	if err != nil {
		return fail(errs.Wrap(errs.Unavailable, err, "open database %s", path))
	}
	s.cp = startCheckpointer(cpConn, o.checkpointEvery)
	s.read, err = sql.Open("sqlite", path+"?_pragma=query_only(1)"+busy)
	if err != nil {
		return fail(errs.Wrap(errs.Unavailable, err, "open database %s", path))
	}
	s.read.SetMaxOpenConns(o.readers)
	s.read.SetMaxIdleConns(o.readers)
	return s, nil
}

// Close lets queued writes commit, then closes every connection.
func (s *Store) Close() error {
	var err error
	s.closer.Do(func() {
		if s.w != nil {
			s.w.close()
			s.w.conn.Close()
		}
		if s.cp != nil {
			s.cp.close()
		}
		s.stmts.Range(func(_, v any) bool { v.(*sql.Stmt).Close(); return true })
		if s.write != nil {
			err = s.write.Close()
		}
		if s.read != nil {
			err = errors.Join(err, s.read.Close())
		}
	})
	return err
}

// CreateAuthority implements store.Store.
func (s *Store) CreateAuthority(ctx context.Context, a store.Authority, ev audit.Event) error {
	a, ev, err := store.PrepareCreateAuthority(a, ev, s.now)
	if err != nil {
		return err
	}
	check := func(t *tx) error { return t.checkNewAuthority(a) }
	return s.w.do(ctx, check, func(t *tx) error { return t.insertAuthority(a, &ev) })
}

// RecordCertificate implements store.Store.
func (s *Store) RecordCertificate(ctx context.Context, c store.Certificate, ev audit.Event) error {
	c, ev, err := store.PrepareRecordCertificate(c, ev)
	if err != nil {
		return err
	}
	sans, err := columns.EncodeSANs(c)
	if err != nil {
		return err
	}
	var order []byte
	if c.Finalizes != nil {
		if order, err = columns.EncodeOrder(*c.Finalizes); err != nil {
			return err
		}
	}
	check := func(t *tx) error {
		if t.stage {
			// A taken serial is refused by the primary key at the flush,
			// which reruns the batch with a savepoint per request.
			ok, err := t.authorityExists(c.Authority)
			if err != nil {
				return err
			}
			return store.CheckRecordCertificate(c, false, ok)
		}
		exists, authority, err := t.exists("certCheck", c.Serial, c.Authority)
		if err != nil {
			return errs.Wrap(errs.Internal, err, "look up certificate %s", c.Serial)
		}
		if err := store.CheckRecordCertificate(c, exists, authority); err != nil {
			return err
		}
		if c.Finalizes != nil {
			return t.checkOrderVersion(c.Finalizes.ID, c.Finalizes.Version)
		}
		return nil
	}
	do := s.w.doStaged
	if c.Finalizes != nil {
		do = s.w.do // it updates the order
	}
	return do(ctx, check, func(t *tx) error {
		if c.Finalizes != nil {
			if err := t.updateOrder(*c.Finalizes, order); err != nil {
				return err
			}
		}
		if err := t.appendEvent(&ev); err != nil {
			return err
		}
		row := []any{c.Serial, c.Authority, c.Subject, sans, c.NotBefore.UnixNano(), c.NotAfter.UnixNano(),
			string(c.Status), columns.NullTime(c.RevokedAt), c.RevocationReason, c.Requester, c.DER, ev.Seq, c.Shard}
		if t.stage {
			t.stageRow(stageCertificates, row...)
			for _, n := range columns.Names(c) {
				t.stageRow(stageCertificateNames, c.Serial, n.Type, n.Value)
			}
			return nil
		}
		if _, err := t.exec("certificate", row...); err != nil {
			return constraintError(err, "certificate %s", c.Serial)
		}
		if err := t.insertNames(c.Serial, columns.Names(c)); err != nil {
			return errs.Wrap(errs.Internal, err, "record names of certificate %s", c.Serial)
		}
		return nil
	})
}

// constraintError names the constraint a write broke despite its check
// (another process wrote meanwhile), or wraps any other failure.
func constraintError(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	what := fmt.Sprintf(format, args...)
	switch constraint(err) {
	case primaryKey, unique:
		return errs.Wrap(errs.Conflict, err, "%s already exists", what)
	case foreignKey:
		return errs.Wrap(errs.NotFound, err, "%s refers to something that does not exist", what)
	}
	return errs.Wrap(errs.Internal, err, "record %s", what)
}

// Revoke implements store.Store.
func (s *Store) Revoke(ctx context.Context, serial string, at time.Time, reason int, ev audit.Event) error {
	ev, err := store.PrepareRevoke(serial, at, reason, ev)
	if err != nil {
		return err
	}
	check := func(t *tx) error {
		var status, authority string
		err := t.w.stmt["state"].QueryRowContext(t.ctx, serial).Scan(&status, &authority)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return errs.Wrap(errs.Internal, err, "read certificate %s", serial)
		}
		if err := store.CheckRevoke(serial, status); err != nil {
			return err
		}
		if ev.Authority == "" {
			ev.Authority = authority
		}
		return nil
	}
	return s.w.do(ctx, check, func(t *tx) error {
		if err := t.appendEvent(&ev); err != nil {
			return err
		}
		if _, err := t.exec("revoke", at.UnixNano(), reason, ev.Seq, serial); err != nil {
			return errs.Wrap(errs.Internal, err, "revoke certificate %s", serial)
		}
		return nil
	})
}

// NextCRLNumbers implements store.Store.
func (s *Store) NextCRLNumbers(ctx context.Context, authority string, shards []int) ([]int64, error) {
	out := make([]int64, len(shards))
	check := func(t *tx) error {
		exists, _, err := t.exists("authCheck", authority, authority)
		if err != nil {
			return errs.Wrap(errs.Internal, err, "look up authority %q", authority)
		}
		return store.CheckAuthorityExists(authority, exists)
	}
	err := s.w.do(ctx, check, func(t *tx) error {
		for i, shard := range shards {
			if err := t.w.stmt["crlNumber"].QueryRowContext(t.ctx, authority, shard).Scan(&out[i]); err != nil {
				return errs.Wrap(errs.Internal, err, "next CRL number of %s shard %d", authority, shard)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AppendEvent implements store.Store.
func (s *Store) AppendEvent(ctx context.Context, ev audit.Event) error {
	ev, err := store.PrepareAppendEvent(ev)
	if err != nil {
		return err
	}
	return s.w.do(ctx, func(*tx) error { return nil }, func(t *tx) error { return t.appendEvent(&ev) })
}

// checkNewAuthority reads what store.CheckCreateAuthority decides on.
func (t *tx) checkNewAuthority(a store.Authority) error {
	exists, parent, err := t.exists("authCheck", a.Name, a.Parent)
	if err != nil {
		return errs.Wrap(errs.Internal, err, "look up authority %q", a.Name)
	}
	return store.CheckCreateAuthority(a, exists, parent)
}

// insertAuthority writes an authority row and the event that records it.
func (t *tx) insertAuthority(a store.Authority, ev *audit.Event) error {
	if err := t.appendEvent(ev); err != nil {
		return err
	}
	_, err := t.exec("authority", a.Name, a.Purpose, columns.NullString(a.Parent), a.KeyURI, a.CertDER, []byte(a.Policy),
		int64(a.DefaultValidity), int64(a.MaxValidity), a.CreatedAt.UnixNano(), ev.Seq, a.BaseURL, max(a.Shards, 1), a.ACME, a.RequireEAB)
	return constraintError(err, "authority %q", a.Name)
}

// ChangeAuthority implements store.Store.
func (s *Store) ChangeAuthority(ctx context.Context, name string, ch store.AuthorityChange, ev audit.Event) error {
	ev, err := store.PrepareChangeAuthority(name, ch, ev)
	if err != nil {
		return err
	}
	check := func(t *tx) error {
		ok, err := t.authorityExists(name)
		if err != nil {
			return err
		}
		return store.CheckAuthorityExists(name, ok)
	}
	return s.w.do(ctx, check, func(t *tx) error {
		if err := t.appendEvent(&ev); err != nil {
			return err
		}
		_, err := t.exec("changeAuthority", ch.ACME, ch.RequireEAB, name)
		return constraintError(err, "authority %q", name)
	})
}
