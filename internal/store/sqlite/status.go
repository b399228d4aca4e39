package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"signet/internal/errs"
	"signet/internal/store"
	"signet/internal/store/columns"
)

// Statuses implements store.Store. Both queries and the head run in one
// read transaction: a WAL snapshot, so nothing committed between them can
// fall behind the returned head.
func (s *Store) Statuses(ctx context.Context, sq store.StatusQuery, fn func(store.CertStatus) error) (int64, error) {
	afterSeq, notAfterAfter := sq.AfterSeq, sq.NotAfterAfter
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, errs.Wrap(errs.Unavailable, err, "begin read")
	}
	defer tx.Rollback()
	var head int64
	if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(seq), 0) FROM events").Scan(&head); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, errs.Wrap(errs.Unavailable, err, "read audit log head")
	}
	if head <= afterSeq {
		return head, nil
	}
	after := notAfterAfter.UnixNano()
	if notAfterAfter.IsZero() {
		after = 0
	}
	// Revocations first: at start, when afterSeq is 0, they are what the
	// CRLs need. The issued rows follow and add only valid certificates: one
	// issued after afterSeq and revoked in this snapshot has its revoke_seq
	// in (afterSeq, head] and came with the first query.
	queries := []string{
		"SELECT " + columns.CertStatusColumns + ` FROM certificates INDEXED BY certificates_revocations
			WHERE status = 'revoked' AND revoke_seq > ? AND revoke_seq <= ? AND not_after > ? AND (? = '' OR authority = ?)`,
		"SELECT " + columns.CertStatusColumns + ` FROM certificates INDEXED BY certificates_issued
			WHERE issue_seq > ? AND issue_seq <= ? AND not_after > ? AND (? = '' OR authority = ?) AND status = 'valid'`,
	}
	if sq.RevokedOnly {
		queries = queries[:1]
	}
	for _, q := range queries {
		rows, err := tx.QueryContext(ctx, q, afterSeq, head, after, sq.Authority, sq.Authority)
		if err != nil {
			return 0, errs.Wrap(errs.Unavailable, err, "query certificate statuses")
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
			return 0, errs.Wrap(errs.Unavailable, err, "read certificate statuses")
		}
	}
	return head, nil
}
