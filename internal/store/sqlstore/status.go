package sqlstore

import (
	"context"
	"database/sql"

	"signet/internal/errs"
	"signet/internal/store"
	"signet/internal/store/columns"
)

// Statuses implements store.Store. The head and both queries run in one
// read-only snapshot (SQLite's WAL snapshot, PostgreSQL's REPEATABLE READ).
// Because every event-writing transaction holds the chain lock until it is
// visible (see writer), a snapshot that holds seq N holds every seq below
// it: nothing committed later can have a seq at or below the returned head.
func (s *Store) Statuses(ctx context.Context, sq store.StatusQuery, fn func(store.CertStatus) error) (int64, error) {
	ctx, cancel := s.bound(ctx, true)
	defer cancel()
	rtx, err := s.read.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return 0, s.d.Error(err, "begin read")
	}
	defer rtx.Rollback()
	var head int64
	if err := rtx.QueryRowContext(ctx, "SELECT COALESCE(MAX(seq), 0) FROM events").Scan(&head); err != nil {
		return 0, s.d.Error(err, "read audit log head")
	}
	if head <= sq.AfterSeq {
		return head, nil
	}
	after := int64(0)
	if !sq.NotAfterAfter.IsZero() {
		after = sq.NotAfterAfter.UnixNano()
	}
	hint := func(index string) string {
		if s.d.IndexHints {
			return " INDEXED BY " + index
		}
		return ""
	}
	// Revocations first: at start, when AfterSeq is 0, they are what the
	// CRLs need. The issued rows follow and add only valid certificates: one
	// issued after AfterSeq and revoked in this snapshot has its revoke_seq
	// in (AfterSeq, head] and came with the first query.
	queries := []string{
		"SELECT " + columns.CertStatusColumns + " FROM certificates" + hint("certificates_revocations") +
			` WHERE status = 'revoked' AND revoke_seq > ? AND revoke_seq <= ? AND not_after > ? AND (? = '' OR authority = ?)`,
		"SELECT " + columns.CertStatusColumns + " FROM certificates" + hint("certificates_issued") +
			` WHERE issue_seq > ? AND issue_seq <= ? AND not_after > ? AND (? = '' OR authority = ?) AND status = 'valid'`,
	}
	if sq.RevokedOnly {
		queries = queries[:1]
	}
	for _, q := range queries {
		rows, err := rtx.QueryContext(ctx, s.d.rebind(q), sq.AfterSeq, head, after, sq.Authority, sq.Authority)
		if err != nil {
			return 0, s.d.Error(err, "query certificate statuses")
		}
		for rows.Next() {
			c, err := columns.ScanCertStatus(rows.Scan)
			if err == nil {
				err = fn(c)
			}
			if err != nil {
				rows.Close()
				return 0, err
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return 0, s.d.Error(err, "read certificate statuses")
		}
	}
	return head, nil
}

// CertStatus implements store.Store: the primary key finds the row, so it
// costs the same with ten certificates or ten million.
func (s *Store) CertStatus(ctx context.Context, serial string) (store.CertStatus, error) {
	return row(ctx, s, func() error { return errs.New(errs.NotFound, "certificate %s not found", serial) },
		columns.ScanCertStatus, "SELECT "+columns.CertStatusColumns+" FROM certificates WHERE serial = ?", serial)
}

// StatusPage implements store.Store, walking the primary key.
func (s *Store) StatusPage(ctx context.Context, q store.StatusPageQuery) ([]store.CertStatus, error) {
	return rows(ctx, s, columns.ScanCertStatus, "SELECT "+columns.CertStatusColumns+
		" FROM certificates WHERE serial > ? AND authority = ? AND not_after > ? ORDER BY serial LIMIT ?",
		q.AfterSerial, q.Authority, q.NotAfterAfter.UnixNano(), q.Limit)
}
