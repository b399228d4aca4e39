// Package sqlstore is store.Store written once over database/sql: the
// queries, row scans, conditional updates and the group-committing writer.
// Each database (store/sqlite, store/postgres) opens its connections,
// migrates its schema and hands over a Dialect: what it does its own way
// (how a write transaction starts and locks the audit chain, placeholders,
// error codes, planner hints).
package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"signet/internal/errs"
	"signet/internal/store"
)

// Dialect is what one database does its own way.
type Dialect struct {
	// Begin starts a write transaction; its statements also take whatever
	// keeps the audit chain one line across every writer of the database.
	Begin []string
	// Numbered placeholders ($1, $2, ...) instead of ?. Queries are written
	// with ? and renumbered once.
	Numbered bool
	// PrepareReads: the driver keeps no statements of its own, so each read
	// query is prepared once and kept.
	PrepareReads bool
	// IndexHints: the planner is told which index the revocation feed's
	// queries and the audit events' time bounds read (SQLite's INDEXED BY,
	// and a unary + for none).
	IndexHints bool
	// NextRevocationVersion is a query that returns the next version of
	// published revocation documents (see published.go).
	NextRevocationVersion string
	// Bytewise is the collation clause that sorts text by bytes ("" where
	// that is the default).
	Bytewise string
	// Kind classifies an error of the driver: errs.Conflict for a broken
	// unique or primary key, errs.NotFound for a broken foreign key,
	// errs.Unavailable when the database cannot be reached or is out of
	// resources for now (the request may be retried), else errs.Internal.
	Kind func(err error) errs.Kind
}

// rebind renumbers the ? placeholders of q for the dialect.
func (d *Dialect) rebind(q string) string {
	if !d.Numbered || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	n := 0
	for _, part := range strings.SplitAfter(q, "?") {
		if p, ok := strings.CutSuffix(part, "?"); ok {
			n++
			b.WriteString(p + "$" + strconv.Itoa(n))
		} else {
			b.WriteString(part)
		}
	}
	return b.String()
}

// Error turns a database error into signet's: a broken constraint is a
// conflict or a missing reference (another writer got there first), a lost
// database is Unavailable (its message without the host, user or database
// names a driver puts in it: unavailable errors reach API clients), anything
// else Internal. what describes the failed step.
func (d *Dialect) Error(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	var e *errs.Error
	if errors.As(err, &e) {
		return err
	}
	what := fmt.Sprintf(format, args...)
	switch d.kind(err) {
	case errs.Conflict:
		return errs.Wrap(errs.Conflict, failure{err}, "%s already exists", what)
	case errs.NotFound:
		return errs.Wrap(errs.NotFound, failure{err}, "%s refers to something that does not exist", what)
	case errs.Unavailable:
		return errs.Wrap(errs.Unavailable, unreachable{failure{err}}, "%s", what)
	}
	return errs.Wrap(errs.Internal, failure{err}, "%s", what)
}

// kind classifies err, a driver's error or one of database/sql's.
func (d *Dialect) kind(err error) errs.Kind {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
		return errs.Unavailable
	}
	return d.Kind(err)
}

// failure marks an error that came from the database, so that the writer
// knows the transaction may be broken.
type failure struct{ err error }

func (f failure) Error() string { return f.err.Error() }
func (f failure) Unwrap() error { return f.err }

// fromDatabase reports whether err came from the database (see failure).
func fromDatabase(err error) bool {
	var f failure
	return errors.As(err, &f)
}

// unreachable is a lost database: its message says what kind of failure
// without naming the server. errors.As still finds the driver's error.
type unreachable struct{ err error }

func (u unreachable) Unwrap() error { return u.err }

func (u unreachable) Error() string {
	msg := u.err.Error()
	for _, why := range []string{"connection refused", "timeout", "shutting down", "terminating connection", "connection reset",
		"broken pipe", "no such host", "too many clients", "EOF", "database is closed", "context deadline exceeded", "context canceled",
		"database is locked", "database or disk is full", "disk I/O error", "unable to open database"} {
		if strings.Contains(msg, why) {
			return "database unavailable (" + why + ")"
		}
	}
	return "database unavailable"
}

// Options are what a backend sets for the common code.
type Options struct {
	MaxBatch int // writes per transaction at most
	// Timeout bounds each read and each write batch; Stream, the reads that
	// visit a whole table. 0: unbounded.
	Timeout, Stream time.Duration
}

// Store is a store.Store over database/sql.
type Store struct {
	d       *Dialect
	now     func() time.Time
	read    *sql.DB
	w       *writer
	timeout time.Duration
	stream  time.Duration
	reads   sync.Map // query text -> *sql.Stmt (PrepareReads) or the query renumbered
	closer  sync.Once
}

var _ store.Store = (*Store)(nil)

// New starts the store: reads go to read, writes to one connection of
// write at a time (the two may be the same pool). The schema must be up to
// date. Close does not close read or write.
func New(ctx context.Context, d *Dialect, read, write *sql.DB, o Options) (*Store, error) {
	w, err := newWriter(ctx, d, write, max(o.MaxBatch, 1), o.Timeout, time.Now)
	if err != nil {
		return nil, err
	}
	s := &Store{d: d, now: time.Now, read: read, w: w, timeout: o.Timeout, stream: o.Stream}
	if err := s.baseline(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close lets queued writes commit, then releases the writer's connection
// and the prepared statements.
func (s *Store) Close() error {
	s.closer.Do(func() {
		s.w.close()
		s.reads.Range(func(_, v any) bool {
			if st, ok := v.(*sql.Stmt); ok {
				st.Close()
			}
			return true
		})
	})
	return nil
}

// ObserveCommits implements store.Observed.
func (s *Store) ObserveCommits(o store.CommitObserver) { s.w.obs.Store(&o) }

// WriteStats reports how many write transactions have committed and how
// many writes they held (tests, benchmarks).
func (s *Store) WriteStats() (batches, writes int64) {
	return s.w.batches.Load(), s.w.committed.Load()
}
