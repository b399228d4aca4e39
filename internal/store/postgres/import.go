package postgres

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"signet/internal/errs"
	"signet/internal/store/sqlstore"
)

// Source is a store to import from: store/sqlite's Export, or another
// PostgreSQL store's Snapshot.
type Source = sqlstore.Source

// Import copies every table of src into this store, row for row: audit
// events keep their seqs, times and hashes, so the chain verifies on the
// new database as it did on the old. It runs in one transaction holding
// the chain lock, refuses a database that holds any event or authority, and
// returns the rows copied per table.
func (s *Store) Import(ctx context.Context, src Source) (map[string]int64, error) {
	var counts map[string]int64
	err := s.withConn(ctx, func(conn *pgx.Conn) error {
		var err error
		counts, err = s.importInto(ctx, conn, src)
		return err
	})
	return counts, err
}

// importInto is Import on one connection.
func (s *Store) importInto(ctx context.Context, conn *pgx.Conn, src Source) (map[string]int64, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, dbError(err, "begin import")
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	counts, err := copyRows(ctx, tx, src)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, dbError(err, "commit import")
	}
	return counts, nil
}

// runner is a pgx connection or transaction.
type runner interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	CopyFrom(ctx context.Context, table pgx.Identifier, columns []string, rows pgx.CopyFromSource) (int64, error)
}

// copyRows copies every table of src, in the caller's transaction, after
// taking the chain lock and checking that the database holds no store.
func copyRows(ctx context.Context, tx runner, src Source) (map[string]int64, error) {
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockChain); err != nil {
		return nil, dbError(err, "lock the audit chain")
	}
	var used bool
	if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM events) OR EXISTS (SELECT 1 FROM authorities)").Scan(&used); err != nil {
		return nil, dbError(err, "check the target is empty")
	}
	if used {
		return nil, errs.New(errs.Conflict, "the target database holds a signet store already; migrate into an empty database")
	}
	counts := map[string]int64{}
	for _, table := range sqlstore.CopiedTables {
		cols, types, err := tableColumns(ctx, tx, table)
		if err != nil {
			return nil, err
		}
		n, err := copyTable(ctx, tx, src, table, cols, types)
		if err != nil {
			return nil, err
		}
		counts[table] = n
	}
	return counts, nil
}

// Create makes the store at url from src (a store made elsewhere, such as
// the SQLite file 'signet init' stages a new home in) in one transaction:
// schema and rows, so that a failure leaves the database as it was and a
// retry starts afresh. It refuses a database that holds a store already.
func Create(ctx context.Context, url string, src Source) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return errs.Wrap(errs.Malformed, errors.New(redact(err.Error(), url)), "store URL")
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return dbError(err, "connect to PostgreSQL")
	}
	defer conn.Close()
	for _, q := range schema.Begin {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return dbError(err, "begin creating the store")
		}
	}
	err = sqlstore.MigrateInTransaction(ctx, &dialect, conn, schema, time.Now())
	if err == nil {
		err = conn.Raw(func(dc any) error {
			_, err := copyRows(ctx, dc.(*stdlib.Conn).Conn(), src)
			return err
		})
	}
	if err == nil {
		_, err = conn.ExecContext(ctx, "COMMIT")
		err = dbError(err, "commit the new store")
	}
	if err != nil {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		return err
	}
	return nil
}

// tableColumns lists a table's columns and their types in order.
func tableColumns(ctx context.Context, tx runner, table string) (names, types []string, err error) {
	rows, err := tx.Query(ctx, `SELECT column_name, data_type FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position`, table)
	if err != nil {
		return nil, nil, dbError(err, "columns of %s", table)
	}
	defer rows.Close()
	for rows.Next() {
		var n, t string
		if err := rows.Scan(&n, &t); err != nil {
			return nil, nil, dbError(err, "columns of %s", table)
		}
		names, types = append(names, n), append(types, t)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, dbError(err, "columns of %s", table)
	}
	if len(names) == 0 {
		return nil, nil, errs.New(errs.Internal, "table %s has no columns", table)
	}
	return names, types, nil
}

// copyTable streams one table from src into COPY: the rows never sit in
// memory all at once, whatever the size of the store.
func copyTable(ctx context.Context, tx runner, src Source, table string, cols, types []string) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rows := make(chan []any, 256)
	exported := make(chan error, 1)
	go func() {
		defer close(rows)
		exported <- src.Export(ctx, table, cols, func(row []any) error {
			out := make([]any, len(row))
			for i, v := range row {
				// SQLite may hand back text where PostgreSQL wants bytes,
				// and keeps booleans as 0 and 1.
				if str, ok := v.(string); ok && types[i] == "bytea" {
					v = []byte(str)
				}
				if n, ok := v.(int64); ok && types[i] == "boolean" {
					v = n != 0
				}
				out[i] = v
			}
			select {
			case rows <- out:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	n, err := tx.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromFunc(func() ([]any, error) {
		row, ok := <-rows
		if !ok {
			return nil, nil
		}
		return row, nil
	}))
	cancel()
	for range rows {
	}
	if xerr := <-exported; xerr != nil && err == nil {
		return 0, xerr
	}
	if err != nil {
		return 0, dbError(err, "copy table %s", table)
	}
	return n, nil
}

// Snapshot calls fn with a Source that reads this store as of one moment:
// every Export runs in the same read-only REPEATABLE READ transaction, so
// nodes serving the database go on writing while the copy holds every
// transaction committed before it began and none after ('signet backup').
func (s *Store) Snapshot(ctx context.Context, fn func(Source) error) error {
	return s.withConn(ctx, func(conn *pgx.Conn) error {
		tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			return dbError(err, "begin the snapshot")
		}
		defer tx.Rollback(context.WithoutCancel(ctx))
		return fn(txSource{tx})
	})
}

// txSource exports tables from one transaction.
type txSource struct{ tx pgx.Tx }

func (t txSource) Export(ctx context.Context, table string, columns []string, fn func(row []any) error) error {
	quoted := make([]string, len(columns))
	for i, c := range columns {
		quoted[i] = pgx.Identifier{c}.Sanitize()
	}
	rows, err := t.tx.Query(ctx, "SELECT "+strings.Join(quoted, ", ")+" FROM "+pgx.Identifier{table}.Sanitize())
	if err != nil {
		return dbError(err, "read table %s", table)
	}
	defer rows.Close()
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return dbError(err, "read table %s", table)
		}
		if err := fn(vals); err != nil {
			return err
		}
	}
	return dbError(rows.Err(), "read table %s", table)
}
