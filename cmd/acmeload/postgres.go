package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"signet/internal/store/postgres/throwaway"
)

// pgDatabase is a fresh database for one run, on the server admin names.
type pgDatabase struct {
	admin, name, url string
	local            bool   // the server runs on this machine: its CPU is readable in /proc
	drop             func() // drops the database, closing its connections
}

func createDatabase(ctx context.Context, admin string) (*pgDatabase, error) {
	u, err := url.Parse(admin)
	if err != nil {
		return nil, fmt.Errorf("-store: %w", err)
	}
	db := &pgDatabase{admin: admin}
	switch h := u.Hostname(); h {
	case "127.0.0.1", "::1", "localhost", "":
		db.local = true
	}
	if db.url, db.drop, err = throwaway.Create(ctx, admin, "signet_load_"); err != nil {
		return nil, err
	}
	u, _ = url.Parse(db.url)
	db.name = strings.TrimPrefix(u.Path, "/")
	return db, nil
}

// pgStats is the server's side of a run: the CPU of the database's
// backends and of the server's own processes (WAL writer, checkpointer...),
// and the database's transactions and rows.
type pgStats struct {
	pidCPU   map[int]time.Duration
	cpu      time.Duration // since the previous snapshot
	cpuKnown bool
	xacts    int64
	written  int64 // rows inserted, updated and deleted
	read     int64 // rows fetched
}

// stats takes a snapshot; with a previous one, cpu is the CPU used since,
// a process that was not there before counting from its start.
func (db *pgDatabase) stats(ctx context.Context, prev *pgStats) (*pgStats, error) {
	conn, err := pgx.Connect(ctx, db.admin)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	s := &pgStats{pidCPU: map[int]time.Duration{}, cpuKnown: db.local}
	rows, err := conn.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = $1 OR backend_type <> 'client backend'`, db.name)
	if err != nil {
		return nil, err
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, err
	}
	for _, pid := range pids {
		c := cpuTime(int(pid))
		s.pidCPU[int(pid)] = c
		if prev != nil {
			s.cpu += c - prev.pidCPU[int(pid)]
		}
	}
	err = conn.QueryRow(ctx, `SELECT xact_commit + xact_rollback, tup_inserted + tup_updated + tup_deleted, tup_fetched
		FROM pg_stat_database WHERE datname = $1`, db.name).Scan(&s.xacts, &s.written, &s.read)
	return s, err
}

// waitIdle waits until no connection to the database is left, so that
// every backend of the run has flushed its statistics.
func (db *pgDatabase) waitIdle(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, db.admin)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	for range 300 {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1`, db.name).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("connections to %s still open 15 s after the nodes stopped", db.name)
}
