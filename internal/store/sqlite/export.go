package sqlite

import (
	"context"
	"strings"

	"signet/internal/errs"
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
