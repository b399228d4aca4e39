package postgres

import (
	"context"
	"database/sql"
	"errors"
	"hash/fnv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"signet/internal/errs"
	"signet/internal/store"
	"signet/internal/store/columns"
)

var _ store.Shared = (*Store)(nil)

// lockPublish orders publications (transaction-level).
const lockPublish int64 = 0x7369676e65740003

// leases are this node's session-level leader locks: one connection per
// job, outside the pool, so that the lock lives exactly as long as that
// session. When this process dies its sessions end and PostgreSQL
// releases the locks; another node's next Lead takes over.
type leases struct {
	mu    sync.Mutex
	conns map[string]*pgx.Conn
	held  map[string]bool
}

// Lead implements store.Shared with pg_try_advisory_lock.
func (s *Store) Lead(ctx context.Context, job string) (bool, error) {
	s.leases.mu.Lock()
	defer s.leases.mu.Unlock()
	if s.leases.conns == nil {
		s.leases.conns, s.leases.held = map[string]*pgx.Conn{}, map[string]bool{}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	conn := s.leases.conns[job]
	if conn == nil {
		var err error
		if conn, err = pgx.ConnectConfig(ctx, s.conn.Copy()); err != nil {
			return false, dbError(err, "connect for job %s", job)
		}
		s.leases.conns[job] = conn
		s.leases.held[job] = false
	}
	h := fnv.New32a()
	h.Write([]byte(job))
	key := lockJobs + int64(h.Sum32())
	var ok bool
	var err error
	if s.leases.held[job] {
		// Still ours as long as the session is: check it is.
		ok = true
		_, err = conn.Exec(ctx, "SELECT 1")
	} else {
		err = conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok)
	}
	if err != nil {
		// The session is gone, and the lock with it (or will be, when the
		// server notices): not the leader, whatever it was.
		conn.Close(context.WithoutCancel(ctx))
		delete(s.leases.conns, job)
		s.leases.held[job] = false
		return false, dbError(err, "leadership of job %s", job)
	}
	s.leases.held[job] = ok
	return ok, nil
}

func (l *leases) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for job, c := range l.conns {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		c.Close(ctx)
		cancel()
		delete(l.conns, job)
	}
}

// PublishRevocation implements store.Shared.
func (s *Store) PublishRevocation(ctx context.Context, docs []store.RevocationDoc) error {
	if len(docs) == 0 {
		return nil
	}
	var b pgx.Batch
	b.Queue("SELECT pg_advisory_xact_lock($1)", lockPublish)
	for _, d := range docs {
		switch d.Kind {
		case "crl":
			b.Queue(`INSERT INTO published_crls (authority, shard, der, this_update, next_update, version)
				VALUES ($1, $2, $3, $4, $5, nextval('revocation_version'))
				ON CONFLICT (authority, shard) DO UPDATE SET der = EXCLUDED.der, this_update = EXCLUDED.this_update,
					next_update = EXCLUDED.next_update, version = EXCLUDED.version`,
				d.Authority, d.Shard, d.DER, d.ThisUpdate.UnixNano(), d.NextUpdate.UnixNano())
		case "ocsp":
			b.Queue(`INSERT INTO ocsp_responses (authority, hash, serial, revoked, der, this_update, next_update, version)
				VALUES ($1, $2, $3, $4, $5, $6, $7, nextval('revocation_version'))
				ON CONFLICT (authority, hash, serial) DO UPDATE SET revoked = EXCLUDED.revoked, der = EXCLUDED.der,
					this_update = EXCLUDED.this_update, next_update = EXCLUDED.next_update, version = EXCLUDED.version`,
				d.Authority, d.Hash, d.Serial, d.Revoked, d.DER, d.ThisUpdate.UnixNano(), d.NextUpdate.UnixNano())
		default:
			return errs.New(errs.Malformed, "revocation document kind %q", d.Kind)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	return s.withConn(ctx, func(conn *pgx.Conn) error {
		// One round trip: the lock, which orders publications, and the upserts.
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return tx.SendBatch(ctx, &b).Close() })
		return dbError(err, "publish %d revocation documents", len(docs))
	})
}

// PublishedCRLs implements store.Shared.
func (s *Store) PublishedCRLs(ctx context.Context, after int64, fn func(store.RevocationDoc) error) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.stream)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, `SELECT authority, shard, der, this_update, next_update, version FROM published_crls
		WHERE version > $1 ORDER BY version`, after)
	if err != nil {
		return after, dbError(err, "read published CRLs")
	}
	defer rows.Close()
	last := after
	for rows.Next() {
		d := store.RevocationDoc{Kind: "crl"}
		var this, next int64
		if err := rows.Scan(&d.Authority, &d.Shard, &d.DER, &this, &next, &d.Version); err != nil {
			return last, dbError(err, "read published CRL")
		}
		d.ThisUpdate, d.NextUpdate, last = columns.Time(this), columns.Time(next), d.Version
		if err := fn(d); err != nil {
			return last, err
		}
	}
	return last, dbError(rows.Err(), "read published CRLs")
}

// PublishedOCSP implements store.Shared.
func (s *Store) PublishedOCSP(ctx context.Context, authority, hash, serial string) (store.RevocationDoc, error) {
	d := store.RevocationDoc{Kind: "ocsp", Authority: authority, Hash: hash, Serial: serial}
	var this, next int64
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := s.db.QueryRowContext(ctx, `SELECT revoked, der, this_update, next_update, version FROM ocsp_responses
		WHERE authority = $1 AND hash = $2 AND serial = $3`, authority, hash, serial).Scan(&d.Revoked, &d.DER, &this, &next, &d.Version)
	if errors.Is(err, sql.ErrNoRows) {
		return d, errs.New(errs.NotFound, "no OCSP response published for %s of %s", serial, authority)
	}
	if err != nil {
		return d, dbError(err, "read published OCSP response")
	}
	d.ThisUpdate, d.NextUpdate = columns.Time(this), columns.Time(next)
	return d, nil
}

// withConn runs fn on a connection of the pool as pgx has it, for what
// only pgx does (batches, COPY).
func (s *Store) withConn(ctx context.Context, fn func(*pgx.Conn) error) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return dbError(err, "connect to PostgreSQL")
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error { return fn(dc.(*stdlib.Conn).Conn()) })
}
