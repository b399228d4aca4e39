// Package postgres is the store shared by several signet nodes: one
// PostgreSQL database reached through pgx's database/sql driver, written by
// sqlstore's group-committing writer on each node, with the audit chain
// kept linear across nodes by an advisory lock and jobs shared out by
// leader locks. What is PostgreSQL's own is here: the connection, the
// schema, the error codes, the locks and what nodes share (shared.go), and
// the import of an SQLite store.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"signet/internal/errs"
	"signet/internal/store"
	"signet/internal/store/sqlstore"
)

// Advisory lock keys: "signet" in the high bytes keeps them apart from
// other applications' locks in a shared database.
const (
	lockMigrate int64 = 0x7369676e65740001 // schema migrations, transaction-level
	lockChain   int64 = 0x7369676e65740002 // the audit chain head, transaction-level
	lockJobs    int64 = 0x7369676e65750000 // + job number: session-level leader locks
)

// Store is a store.Store in a PostgreSQL database.
type Store struct {
	*sqlstore.Store
	db      *sql.DB
	conn    *pgx.ConnConfig // for the leader locks' own sessions
	timeout time.Duration
	stream  time.Duration
	leases  leases
	closer  sync.Once
}

var _ store.Store = (*Store)(nil)

// Option changes how Open sets up the store.
type Option func(*options)

type options struct {
	maxConns int32
	timeout  time.Duration
	stream   time.Duration
}

// WithMaxConns sets the size of the connection pool (default 16, unless the
// URL says pool_max_conns). audit.Verify holds two at once, the writer one.
func WithMaxConns(n int) Option { return func(o *options) { o.maxConns = int32(max(n, 3)) } }

// WithTimeout bounds each read and each write batch (default 15s): a
// database that stops answering fails requests instead of hanging them.
func WithTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}

// Open connects to the database at url (postgres://...) and brings its
// schema up to date.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	o := options{timeout: 15 * time.Second, stream: 10 * time.Minute}
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errs.Wrap(errs.Malformed, errors.New(redact(err.Error(), url)), "store URL")
	}
	if o.maxConns > 0 {
		cfg.MaxConns = o.maxConns
	} else if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = 16
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	// database/sql keeps the connections: a connection idle for more than
	// a second is pinged before it is used again, a dead one replaced.
	s := &Store{db: stdlib.OpenDB(*cfg.ConnConfig), conn: cfg.ConnConfig, timeout: o.timeout, stream: o.stream}
	s.db.SetMaxOpenConns(int(cfg.MaxConns))
	s.db.SetMaxIdleConns(int(cfg.MaxConns))
	s.db.SetConnMaxLifetime(cfg.MaxConnLifetime) // the URL's pool_max_conn_lifetime, else an hour
	s.db.SetConnMaxIdleTime(cfg.MaxConnIdleTime)
	mctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := sqlstore.Migrate(mctx, &dialect, s.db, schema, time.Now()); err != nil {
		s.Close()
		return nil, err
	}
	s.Store, err = sqlstore.New(ctx, &dialect, s.db, s.db, sqlstore.Options{MaxBatch: 256, Timeout: o.timeout, Stream: o.stream})
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// redact removes the password of url from a message about it.
func redact(msg, url string) string {
	if cfg, err := pgconn.ParseConfig(url); err == nil && cfg.Password != "" {
		msg = strings.ReplaceAll(msg, cfg.Password, "xxxxx")
	}
	return msg
}

// Close lets queued writes commit, then closes the connections.
func (s *Store) Close() error {
	s.closer.Do(func() {
		if s.Store != nil {
			s.Store.Close()
		}
		s.leases.close()
		s.db.Close()
	})
	return nil
}

// dialect is what PostgreSQL does its own way. Several nodes write the
// same database: each batch takes the transaction-level advisory lock
// lockChain before it reads the chain head (see sqlstore's writer).
var dialect = sqlstore.Dialect{
	Begin:    []string{"BEGIN", "SELECT pg_advisory_xact_lock(" + strconv.FormatInt(lockChain, 10) + ")"},
	Numbered: true,
	Bytewise: ` COLLATE "C"`,
	Kind:     kind,
	// Drawn under lockChain, which every write transaction holds: versions
	// grow in commit order.
	NextRevocationVersion: "SELECT nextval('revocation_version')",
}

// kind classifies a PostgreSQL error for sqlstore.Dialect.
func kind(err error) errs.Kind {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505": // unique_violation
			return errs.Conflict
		case pe.Code == "23503": // foreign_key_violation
			return errs.NotFound
		case len(pe.Code) == 5 && (pe.Code[:2] == "08" || pe.Code[:3] == "57P" || pe.Code[:2] == "53"):
			// Class 08: connection exception; 57P: operator intervention
			// (shutdown, crash); 53: insufficient resources.
			return errs.Unavailable
		}
		return errs.Internal
	}
	var ne net.Error
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) || errors.As(err, &ne) {
		return errs.Unavailable
	}
	return errs.Internal
}

// dbError is sqlstore's classification for the parts only PostgreSQL has.
func dbError(err error, format string, args ...any) error {
	return dialect.Error(err, format, args...)
}
