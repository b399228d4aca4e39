package sqlite

import (
	"context"
	"database/sql"
	"os"
	"strings"
	"time"

	"signet/internal/errs"
	"signet/internal/store/sqlstore"
)

// Export calls fn with every row of a table, the given columns in order,
// as the database holds them (int64, string, []byte or nil), ordered by
// rowid. It is how 'signet store migrate' copies a home to another backend
// verbatim, audit events with their seqs and hashes included.
func (s *Store) Export(ctx context.Context, table string, columns []string, fn func(row []any) error) error {
	var n int
	if err := s.read.QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = ?", table).Scan(&n); err != nil {
		return errs.Wrap(errs.Unavailable, err, "look up table %s", table)
	}
	if n == 0 {
		return errs.New(errs.NotFound, "the SQLite store has no table %s", table)
	}
	quoted := make([]string, len(columns))
	for i, c := range columns {
		quoted[i] = `"` + strings.ReplaceAll(c, `"`, `""`) + `"`
	}
	q := "SELECT " + strings.Join(quoted, ", ") + ` FROM "` + strings.ReplaceAll(table, `"`, `""`) + `"`
	rows, err := s.read.QueryContext(ctx, q)
	if err != nil {
		return errs.Wrap(errs.Internal, err, "read table %s", table)
	}
	defer rows.Close()
	vals := make([]any, len(columns))
	ptrs := make([]any, len(columns))
	for rows.Next() {
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return errs.Wrap(errs.Internal, err, "read table %s", table)
		}
		if err := fn(vals); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return errs.Wrap(errs.Unavailable, err, "read table %s", table)
	}
	return nil
}

// Load makes a store in the new file path from src: the schema, then the
// rows of every copied table (sqlstore.CopiedTables) in one transaction,
// audit events with their seqs and hashes. The file is created with mode
// 0600 and must not exist. On failure it is removed: nothing half-copied
// is left behind. It returns the rows copied per table.
func Load(ctx context.Context, path string, src sqlstore.Source) (map[string]int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "create database %s", path)
	}
	f.Close()
	counts, err := load(ctx, path, src)
	if err != nil {
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			os.Remove(p)
		}
		return nil, err
	}
	return counts, nil
}

func load(ctx context.Context, path string, src sqlstore.Source) (map[string]int64, error) {
	uri, err := fileURI(path)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", uri+"?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)")
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "open database %s", path)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if err := sqlstore.Migrate(ctx, &dialect, db, schema, time.Now()); err != nil {
		return nil, err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, dialect.Error(err, "begin loading %s", path)
	}
	defer tx.Rollback()
	counts := map[string]int64{}
	for _, table := range sqlstore.CopiedTables {
		n, err := loadTable(ctx, tx, src, table)
		if err != nil {
			return nil, err
		}
		counts[table] = n
	}
	if err := tx.Commit(); err != nil {
		return nil, dialect.Error(err, "commit the loaded store %s", path)
	}
	return counts, nil
}

// loadTable copies one table of src into tx, its columns as this schema
// has them, one row at a time: the table never sits in memory.
func loadTable(ctx context.Context, tx *sql.Tx, src sqlstore.Source, table string) (int64, error) {
	rows, err := tx.QueryContext(ctx, "SELECT name FROM pragma_table_info(?) ORDER BY cid", table)
	if err != nil {
		return 0, dialect.Error(err, "columns of %s", table)
	}
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			rows.Close()
			return 0, dialect.Error(err, "columns of %s", table)
		}
		cols = append(cols, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, dialect.Error(err, "columns of %s", table)
	}
	if len(cols) == 0 {
		return 0, errs.New(errs.Internal, "table %s has no columns", table)
	}
	stmt, err := tx.PrepareContext(ctx, "INSERT INTO "+table+" ("+strings.Join(cols, ", ")+") VALUES (?"+strings.Repeat(", ?", len(cols)-1)+")")
	if err != nil {
		return 0, dialect.Error(err, "load table %s", table)
	}
	defer stmt.Close()
	var n int64
	err = src.Export(ctx, table, cols, func(row []any) error {
		if _, err := stmt.ExecContext(ctx, row...); err != nil {
			return dialect.Error(err, "load a row of %s", table)
		}
		n++
		return nil
	})
	return n, err
}
