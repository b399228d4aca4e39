package postgres

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
	"signet/internal/store/columns"
)

// each runs q on the pool within the read timeout (the stream timeout when
// stream is set: those calls visit a whole table) and calls scan per row.
func (s *Store) each(ctx context.Context, stream bool, q string, args []any, scan func(pgx.Rows) error) error {
	d := s.timeout
	if stream {
		d = s.stream
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return dbError(err, "query database")
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return dbError(err, "read database")
	}
	return nil
}

// Authority implements store.Store.
func (s *Store) Authority(ctx context.Context, name string) (store.Authority, error) {
	as, err := s.authorities(ctx, "SELECT "+columns.AuthorityColumns+" FROM authorities WHERE name = $1", name)
	if err == nil && len(as) == 0 {
		err = errs.New(errs.NotFound, "authority %q not found", name)
	}
	if err != nil {
		return store.Authority{}, err
	}
	return as[0], nil
}

// Authorities implements store.Store.
func (s *Store) Authorities(ctx context.Context) ([]store.Authority, error) {
	return s.authorities(ctx, "SELECT "+columns.AuthorityColumns+" FROM authorities ORDER BY name")
}

func (s *Store) authorities(ctx context.Context, q string, args ...any) ([]store.Authority, error) {
	var out []store.Authority
	err := s.each(ctx, false, q, args, func(rows pgx.Rows) error {
		a, err := columns.ScanAuthority(rows.Scan)
		out = append(out, a)
		return err
	})
	return out, err
}

// Certificate implements store.Store.
func (s *Store) Certificate(ctx context.Context, serial string) (store.Certificate, error) {
	cs, err := s.certificates(ctx, "SELECT "+columns.CertificateColumns+" FROM certificates WHERE serial = $1", serial)
	if err == nil && len(cs) == 0 {
		err = errs.New(errs.NotFound, "certificate %s not found", serial)
	}
	if err != nil {
		return store.Certificate{}, err
	}
	return cs[0], nil
}

// Certificates implements store.Store.
func (s *Store) Certificates(ctx context.Context, f store.Filter) ([]store.Certificate, error) {
	var where []string
	var args []any
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if f.Authority != "" {
		add("authority = ?", f.Authority)
	}
	if f.Status != "" {
		add("status = ?", string(f.Status))
	}
	if f.Name != "" {
		add("serial IN (SELECT serial FROM certificate_names WHERE value = ?)", f.Name)
	}
	if !f.NotAfterBefore.IsZero() {
		add("not_after < ?", f.NotAfterBefore.UnixNano())
	}
	if !f.NotAfterAfter.IsZero() {
		add("not_after > ?", f.NotAfterAfter.UnixNano())
	}
	if f.AfterSerial != "" {
		// The cursor is a serial; its not_after, which never changes, places
		// it in the (not_after, serial) order.
		var notAfter int64
		found := false
		err := s.each(ctx, false, "SELECT not_after FROM certificates WHERE serial = $1", []any{f.AfterSerial}, func(rows pgx.Rows) error {
			found = true
			return rows.Scan(&notAfter)
		})
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, errs.New(errs.NotFound, "pagination cursor: certificate %s not found", f.AfterSerial)
		}
		add("(not_after > ?", notAfter)
		where[len(where)-1] += " OR (not_after = $" + strconv.Itoa(len(args)) + " AND serial > $" + strconv.Itoa(len(args)+1) + "))"
		args = append(args, f.AfterSerial)
	}
	q := "SELECT " + columns.CertificateColumns + " FROM certificates"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += ` ORDER BY not_after, serial`
	if f.Limit > 0 {
		args = append(args, f.Limit)
		q += " LIMIT $" + strconv.Itoa(len(args))
	}
	return s.certificates(ctx, q, args...)
}

func (s *Store) certificates(ctx context.Context, q string, args ...any) ([]store.Certificate, error) {
	var out []store.Certificate
	err := s.each(ctx, false, q, args, func(rows pgx.Rows) error {
		c, err := columns.ScanCertificate(rows.Scan)
		out = append(out, c)
		return err
	})
	return out, err
}

// Events implements store.Store and audit.Reader.
func (s *Store) Events(ctx context.Context, fn func(audit.Event) error) error {
	return s.each(ctx, true, "SELECT "+columns.EventColumns+" FROM events ORDER BY seq", nil, func(rows pgx.Rows) error {
		e, err := columns.ScanEvent(rows.Scan)
		if err != nil {
			return err
		}
		return fn(e)
	})
}

// IssuedCertificates implements store.Store and audit.Reader.
func (s *Store) IssuedCertificates(ctx context.Context, fn func(serial string, issueSeq int64) error) error {
	q := `SELECT serial, issue_seq FROM certificates
		UNION ALL SELECT 'ssh:' || serial, issue_seq FROM ssh_certificates ORDER BY issue_seq`
	return s.each(ctx, true, q, nil, func(rows pgx.Rows) error {
		var serial string
		var seq int64
		if err := rows.Scan(&serial, &seq); err != nil {
			return errs.Wrap(errs.Internal, err, "read certificate")
		}
		return fn(serial, seq)
	})
}

// Statuses implements store.Store. The head and both queries run in one
// REPEATABLE READ transaction, one snapshot. Because every event-writing
// transaction holds the chain lock until it is visible, a snapshot that
// holds seq N holds every seq below it: nothing committed later can have a
// seq at or below the returned head.
func (s *Store) Statuses(ctx context.Context, sq store.StatusQuery, fn func(store.CertStatus) error) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.stream)
	defer cancel()
	rtx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return 0, dbError(err, "begin read")
	}
	defer rtx.Rollback(context.WithoutCancel(ctx))
	var head int64
	if err := rtx.QueryRow(ctx, "SELECT COALESCE(MAX(seq), 0) FROM events").Scan(&head); err != nil {
		return 0, dbError(err, "read audit log head")
	}
	if head <= sq.AfterSeq {
		return head, nil
	}
	after := int64(0)
	if !sq.NotAfterAfter.IsZero() {
		after = sq.NotAfterAfter.UnixNano()
	}
	// Revocations first (see store/sqlite): the issued rows then add only
	// valid certificates.
	queries := []string{
		"SELECT " + columns.CertStatusColumns + ` FROM certificates
			WHERE status = 'revoked' AND revoke_seq > $1 AND revoke_seq <= $2 AND not_after > $3 AND ($4 = '' OR authority = $4)`,
		"SELECT " + columns.CertStatusColumns + ` FROM certificates
			WHERE issue_seq > $1 AND issue_seq <= $2 AND not_after > $3 AND ($4 = '' OR authority = $4) AND status = 'valid'`,
	}
	if sq.RevokedOnly {
		queries = queries[:1]
	}
	for _, q := range queries {
		rows, err := rtx.Query(ctx, q, sq.AfterSeq, head, after, sq.Authority)
		if err != nil {
			return 0, dbError(err, "query certificate statuses")
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
		rows.Close()
		if err := rows.Err(); err != nil {
			return 0, dbError(err, "read certificate statuses")
		}
	}
	return head, nil
}

func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }
