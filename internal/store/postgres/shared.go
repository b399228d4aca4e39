package postgres

import (
	"context"
	"hash/fnv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"signet/internal/store"
)

var _ store.Shared = (*Store)(nil)

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
