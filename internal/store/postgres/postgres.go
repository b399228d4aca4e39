// Package postgres is the store shared by several signet nodes: one
// PostgreSQL database reached through a pgx connection pool, written by one
// group-committing goroutine per node, with the audit chain kept linear
// across nodes by an advisory lock and jobs shared out by leader locks.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
	"signet/internal/store/columns"
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
	now     func() time.Time
	pool    *pgxpool.Pool
	w       *writer
	timeout time.Duration
	stream  time.Duration
	leases  leases
	closer  sync.Once
}

var _ store.Store = (*Store)(nil)

// Option changes how Open sets up the store.
type Option func(*options)

type options struct {
	now          func() time.Time
	maxBatch     int
	maxConns     int32
	timeout      time.Duration
	writeTimeout time.Duration
	stream       time.Duration
}

// WithClock sets the clock that stamps events given without a time.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithMaxBatch caps how many writes share one transaction (default 256).
func WithMaxBatch(n int) Option { return func(o *options) { o.maxBatch = max(n, 1) } }

// WithMaxConns sets the size of the connection pool (default 16, unless the
// URL says pool_max_conns). audit.Verify holds two at once, the writer one.
func WithMaxConns(n int) Option { return func(o *options) { o.maxConns = int32(max(n, 3)) } }

// WithTimeout bounds each read and each write batch (default 15s): a
// database that stops answering fails requests instead of hanging them.
func WithTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout, o.writeTimeout = d, d }
}

// Open connects to the database at url (postgres://...) and brings its
// schema up to date.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	o := options{now: time.Now, maxBatch: 256, timeout: 15 * time.Second, writeTimeout: 15 * time.Second, stream: 10 * time.Minute}
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
	cfg.HealthCheckPeriod = 5 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "connect to PostgreSQL")
	}
	mctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := migrate(mctx, pool, migrations, o.now()); err != nil {
		pool.Close()
		return nil, err
	}
	return &Store{now: o.now, pool: pool, w: newWriter(pool, o.maxBatch, o.writeTimeout, o.now),
		timeout: o.timeout, stream: o.stream}, nil
}

// redact removes the password of url from a message about it.
func redact(msg, url string) string {
	if cfg, err := pgconn.ParseConfig(url); err == nil && cfg.Password != "" {
		msg = strings.ReplaceAll(msg, cfg.Password, "xxxxx")
	}
	return msg
}

// Close lets queued writes commit, then closes the pool.
func (s *Store) Close() error {
	s.closer.Do(func() {
		s.w.close()
		s.leases.close()
		s.pool.Close()
	})
	return nil
}

// dbError turns a database error into signet's: a broken constraint is a
// conflict or a missing reference (another node wrote meanwhile), a lost
// connection is Unavailable, anything else Internal.
func dbError(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	what := fmt.Sprintf(format, args...)
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return errs.Wrap(errs.Conflict, err, "%s: already exists", what)
		case "23503": // foreign_key_violation
			return errs.Wrap(errs.NotFound, err, "%s refers to something that does not exist", what)
		}
	}
	if connectionLost(err) {
		return errs.Wrap(errs.Unavailable, unreachable{err}, "%s", what)
	}
	return errs.Wrap(errs.Internal, err, "%s", what)
}

// unreachable is a lost database: its message says what kind of failure
// without the host, user and database names pgx puts in it, because
// unavailable errors reach API clients as problem details. errors.As still
// finds the pgx error beneath.
type unreachable struct{ err error }

func (u unreachable) Unwrap() error { return u.err }

func (u unreachable) Error() string {
	msg := u.err.Error()
	for _, why := range []string{"connection refused", "timeout", "shutting down", "terminating connection", "connection reset",
		"broken pipe", "no such host", "too many clients", "EOF", "closed pool", "context deadline exceeded", "context canceled"} {
		if strings.Contains(msg, why) {
			return "database unavailable (" + why + ")"
		}
	}
	return "database unavailable"
}

// CreateAuthority implements store.Store.
func (s *Store) CreateAuthority(ctx context.Context, a store.Authority, ev audit.Event) error {
	a, ev, err := store.PrepareCreateAuthority(a, ev, s.now)
	if err != nil {
		return err
	}
	return s.w.do(ctx, checkNewAuthority(a), func(t *tx) error {
		if err := t.appendEvent(&ev); err != nil {
			return err
		}
		return t.insertAuthority(a, ev.Seq)
	})
}

func checkNewAuthority(a store.Authority) func(t *tx) error {
	return func(t *tx) error {
		exists, parent, err := t.exists(authCheck, a.Name, a.Parent)
		if err != nil {
			return dbError(err, "look up authority %q", a.Name)
		}
		return store.CheckCreateAuthority(a, exists, parent)
	}
}

const authCheck = `SELECT EXISTS (SELECT 1 FROM authorities WHERE name = $1), EXISTS (SELECT 1 FROM authorities WHERE name = $2)`

func (t *tx) insertAuthority(a store.Authority, seq int64) error {
	_, err := t.exec(`INSERT INTO authorities (name, purpose, parent, key_uri, cert_der, policy,
		default_validity, max_validity, created_at, event_seq, base_url, shards, acme, require_eab)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		a.Name, a.Purpose, columns.NullString(a.Parent), a.KeyURI, a.CertDER, columns.NullBytes(a.Policy),
		int64(a.DefaultValidity), int64(a.MaxValidity), a.CreatedAt.UnixNano(), seq, a.BaseURL, max(a.Shards, 1), a.ACME, a.RequireEAB)
	return dbError(err, "authority %q", a.Name)
}

// ChangeAuthority implements store.Store.
func (s *Store) ChangeAuthority(ctx context.Context, name string, ch store.AuthorityChange, ev audit.Event) error {
	ev, err := store.PrepareChangeAuthority(name, ch, ev)
	if err != nil {
		return err
	}
	check := func(t *tx) error {
		exists, _, err := t.exists(authCheck, name, name)
		if err != nil {
			return dbError(err, "look up authority %q", name)
		}
		return store.CheckAuthorityExists(name, exists)
	}
	return s.w.do(ctx, check, func(t *tx) error {
		if err := t.appendEvent(&ev); err != nil {
			return err
		}
		_, err := t.exec(`UPDATE authorities SET acme = COALESCE($1, acme), require_eab = COALESCE($2, require_eab) WHERE name = $3`,
			ch.ACME, ch.RequireEAB, name)
		return dbError(err, "authority %q", name)
	})
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
		exists, authority, err := t.exists(`SELECT EXISTS (SELECT 1 FROM certificates WHERE serial = $1),
			EXISTS (SELECT 1 FROM authorities WHERE name = $2)`, c.Serial, c.Authority)
		if err != nil {
			return dbError(err, "look up certificate %s", c.Serial)
		}
		if err := store.CheckRecordCertificate(c, exists, authority); err != nil {
			return err
		}
		if c.Finalizes != nil {
			return t.checkOrderVersion(c.Finalizes.ID, c.Finalizes.Version)
		}
		return nil
	}
	return s.w.do(ctx, check, func(t *tx) error {
		if c.Finalizes != nil {
			if err := t.updateOrder(*c.Finalizes, order); err != nil {
				return err
			}
		}
		if err := t.appendEvent(&ev); err != nil {
			return err
		}
		// One round trip: the row and its names in one statement.
		ns := columns.Names(c)
		types, values := make([]string, len(ns)), make([]string, len(ns))
		for i, n := range ns {
			types[i], values[i] = n.Type, n.Value
		}
		_, err := t.exec(`WITH cert AS (
				INSERT INTO certificates (serial, authority, subject, sans, not_before, not_after,
					status, revoked_at, reason, requester, der, issue_seq, shard)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING serial)
			INSERT INTO certificate_names (serial, type, value)
			SELECT DISTINCT cert.serial, n.type, n.value FROM cert, unnest($14::text[], $15::text[]) AS n(type, value)`,
			c.Serial, c.Authority, c.Subject, sans, c.NotBefore.UnixNano(), c.NotAfter.UnixNano(),
			string(c.Status), columns.NullTime(c.RevokedAt), c.RevocationReason, c.Requester, c.DER, ev.Seq, c.Shard, types, values)
		return dbError(err, "certificate %s", c.Serial)
	})
}

// Revoke implements store.Store.
func (s *Store) Revoke(ctx context.Context, serial string, at time.Time, reason int, ev audit.Event) error {
	ev, err := store.PrepareRevoke(serial, at, reason, ev)
	if err != nil {
		return err
	}
	check := func(t *tx) error {
		var status, authority string
		err := t.tx.QueryRow(t.ctx, "SELECT status, authority FROM certificates WHERE serial = $1", serial).Scan(&status, &authority)
		if err != nil && !isNoRows(err) {
			return dbError(err, "read certificate %s", serial)
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
		_, err := t.exec("UPDATE certificates SET status = 'revoked', revoked_at = $1, reason = $2, revoke_seq = $3 WHERE serial = $4",
			at.UnixNano(), reason, ev.Seq, serial)
		return dbError(err, "revoke certificate %s", serial)
	})
}

// NextCRLNumbers implements store.Store. The upsert is atomic on its own,
// but goes through the writer like every write so that Close waits for it.
func (s *Store) NextCRLNumbers(ctx context.Context, authority string, shards []int) ([]int64, error) {
	out := make([]int64, len(shards))
	check := func(t *tx) error {
		exists, _, err := t.exists(authCheck, authority, authority)
		if err != nil {
			return dbError(err, "look up authority %q", authority)
		}
		return store.CheckAuthorityExists(authority, exists)
	}
	err := s.w.do(ctx, check, func(t *tx) error {
		for i, shard := range shards {
			err := t.tx.QueryRow(t.ctx, `INSERT INTO crl_numbers (authority, shard, number) VALUES ($1, $2, 1)
				ON CONFLICT (authority, shard) DO UPDATE SET number = crl_numbers.number + 1 RETURNING number`,
				authority, shard).Scan(&out[i])
			if err != nil {
				return dbError(err, "next CRL number of %s shard %d", authority, shard)
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
