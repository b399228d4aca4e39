// Package throwaway creates PostgreSQL databases for one run and drops
// them after: for tests (through pgtest) and for cmd/acmeload. It does not
// import testing, so a binary may use it; test helpers that take a
// testing.TB belong in pgtest.
package throwaway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
)

// Create creates a database named prefix and random hex on the server
// admin points to (a URL with rights to create databases) and returns its
// URL and a func that drops it, closing its connections.
func Create(ctx context.Context, admin, prefix string) (dbURL string, drop func(), err error) {
	u, err := url.Parse(admin)
	if err != nil {
		return "", nil, fmt.Errorf("PostgreSQL admin URL: %w", err)
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", nil, fmt.Errorf("connect to the PostgreSQL server: %w", err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	name := prefix + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, fmt.Errorf("create database: %w", err)
	}
	drop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, admin); err == nil {
			conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			conn.Close(ctx)
		}
	}
	u.Path = "/" + name
	return u.String(), drop, nil
}
