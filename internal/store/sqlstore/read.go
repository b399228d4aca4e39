package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
	"signet/internal/store/columns"
)

// query runs q, written with ? placeholders, on the read pool: through a
// statement prepared once per query text where the dialect asks for it (a
// sync.Map, so readers never wait on one another here).
func (s *Store) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	v, ok := s.reads.Load(q)
	if !ok {
		v = s.d.rebind(q)
		if s.d.PrepareReads {
			prepared, err := s.read.PrepareContext(ctx, v.(string))
			if err != nil {
				return nil, s.d.Error(err, "prepare query")
			}
			if v, ok = s.reads.LoadOrStore(q, prepared); ok {
				prepared.Close()
			}
		} else {
			s.reads.Store(q, v)
		}
	}
	var rows *sql.Rows
	var err error
	if st, ok := v.(*sql.Stmt); ok {
		rows, err = st.QueryContext(ctx, args...)
	} else {
		rows, err = s.read.QueryContext(ctx, v.(string), args...)
	}
	if err != nil {
		return nil, s.d.Error(err, "query database")
	}
	return rows, nil
}

// each runs q within the read timeout (the stream timeout when stream is
// set: those calls visit a whole table) and calls scan for every row.
func (s *Store) each(ctx context.Context, stream bool, q string, args []any, scan func(*sql.Rows) error) error {
	ctx, cancel := s.bound(ctx, stream)
	defer cancel()
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return s.d.Error(rows.Err(), "read database")
}

// bound gives ctx the read timeout, or the stream timeout.
func (s *Store) bound(ctx context.Context, stream bool) (context.Context, context.CancelFunc) {
	d := s.timeout
	if stream {
		d = s.stream
	}
	if d <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// rows runs q and reads every row with scan, one of package columns'
// Scan functions.
func rows[T any](ctx context.Context, s *Store, scan func(func(...any) error) (T, error), q string, args ...any) ([]T, error) {
	var out []T
	err := s.each(ctx, false, q, args, func(r *sql.Rows) error {
		v, err := scan(r.Scan)
		out = append(out, v)
		return err
	})
	return out, err
}

// row runs q and reads its first row with scan; notFound says what is
// missing if there is none.
func row[T any](ctx context.Context, s *Store, notFound func() error, scan func(func(...any) error) (T, error), q string, args ...any) (T, error) {
	vs, err := rows(ctx, s, scan, q, args...)
	if err == nil && len(vs) == 0 {
		err = notFound()
	}
	if err != nil {
		var zero T
		return zero, err
	}
	return vs[0], nil
}

// Authority implements store.Store.
func (s *Store) Authority(ctx context.Context, name string) (store.Authority, error) {
	return row(ctx, s, func() error { return errs.New(errs.NotFound, "authority %q not found", name) },
		columns.ScanAuthority, "SELECT "+columns.AuthorityColumns+" FROM authorities WHERE name = ?", name)
}

// Authorities implements store.Store.
func (s *Store) Authorities(ctx context.Context) ([]store.Authority, error) {
	return rows(ctx, s, columns.ScanAuthority, "SELECT "+columns.AuthorityColumns+" FROM authorities ORDER BY name")
}

// Certificate implements store.Store.
func (s *Store) Certificate(ctx context.Context, serial string) (store.Certificate, error) {
	return row(ctx, s, func() error { return errs.New(errs.NotFound, "certificate %s not found", serial) },
		columns.ScanCertificate, "SELECT "+columns.CertificateColumns+" FROM certificates WHERE serial = ?", serial)
}

// Certificates implements store.Store.
func (s *Store) Certificates(ctx context.Context, f store.Filter) ([]store.Certificate, error) {
	var where []string
	var args []any
	add := func(cond string, arg ...any) {
		where = append(where, cond)
		args = append(args, arg...)
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
	if f.NameContains != "" {
		like := "%" + likeEscaper.Replace(strings.ToLower(f.NameContains)) + "%"
		add(`(LOWER(subject) LIKE ? ESCAPE '\' OR serial IN (SELECT serial FROM certificate_names WHERE LOWER(value) LIKE ? ESCAPE '\'))`, like, like)
	}
	if f.Serial != "" {
		add("serial = ?", f.Serial)
	}
	if !f.WithInternal {
		add("internal = ?", false)
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
		err := s.each(ctx, false, "SELECT not_after FROM certificates WHERE serial = ?", []any{f.AfterSerial}, func(rows *sql.Rows) error {
			found = true
			return rows.Scan(&notAfter)
		})
		if err != nil {
			return nil, err
		}
		if !found {
			return nil, errs.New(errs.NotFound, "pagination cursor: certificate %s not found", f.AfterSerial)
		}
		add("(not_after, serial) > (?, ?)", notAfter, f.AfterSerial)
	}
	q, args := listing("SELECT "+columns.CertificateColumns+" FROM certificates", where, "not_after, serial", f.Limit, args)
	return rows(ctx, s, columns.ScanCertificate, q, args...)
}

// likeEscaper escapes LIKE's wildcards, with a backslash as the ESCAPE character.
var likeEscaper = strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`)

// listing completes the query of a list: rows where every condition
// holds, in order, at most limit of them (0: all).
func listing(q string, where []string, order string, limit int, args []any) (string, []any) {
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY " + order
	if limit > 0 {
		q += " LIMIT ?"
		args = append(args, limit)
	}
	return q, args
}

// Events implements store.Store and audit.Reader.
func (s *Store) Events(ctx context.Context, fn func(audit.Event) error) error {
	return s.each(ctx, true, "SELECT "+columns.EventColumns+" FROM events ORDER BY seq", nil, func(rows *sql.Rows) error {
		e, err := columns.ScanEvent(rows.Scan)
		if err != nil {
			return err
		}
		return fn(e)
	})
}

// AuditEvents implements store.Store.
func (s *Store) AuditEvents(ctx context.Context, f store.EventFilter) ([]audit.Event, error) {
	var where []string
	var args []any
	add := func(cond string, arg any) {
		where = append(where, cond)
		args = append(args, arg)
	}
	if f.Kind != "" {
		add("kind = ?", f.Kind)
	}
	if f.Actor != "" {
		add("actor = ?", f.Actor)
	}
	if f.Subject != "" {
		add("subject = ?", f.Subject)
	}
	// On SQLite the store picks the index of a time bound (see fewerSince):
	// events_time, or none (a unary + keeps the planner off it, which it
	// would take for a range with two bounds however wide).
	from, t := " FROM events", "time"
	if s.d.IndexHints {
		t = "+time"
		if !f.Since.IsZero() {
			byTime, err := s.fewerSince(ctx, f.Since, f.AfterSeq)
			if err != nil {
				return nil, err
			}
			if byTime {
				from, t = " FROM events INDEXED BY events_time", "time"
			}
		}
	}
	if !f.Since.IsZero() {
		add(t+" >= ?", f.Since.UnixNano())
	}
	if !f.Until.IsZero() {
		add(t+" < ?", f.Until.UnixNano())
	}
	if f.AfterSeq > 0 {
		add("seq > ?", f.AfterSeq)
	}
	q, args := listing("SELECT "+columns.EventColumns+from, where, "seq", f.Limit, args)
	return rows(ctx, s, columns.ScanEvent, q, args...)
}

// fewerSince says whether fewer events lie at or after since (read from
// events_time, then sorted by seq) than the seq-order scan of the log
// passes over, from afterSeq, before it reaches them. The planner cannot
// tell (SQLite keeps no statistics; PostgreSQL decides from its own, and is
// not asked): a since of an hour ago on a log of millions would be read
// from the log's first event. Two index probes place since in the log, by
// the seq of its first event at or after since, in time order. Times out of
// seq order (several PostgreSQL nodes) make this an estimate; the events
// returned are the same either way: only the order the query reads in
// changes.
func (s *Store) fewerSince(ctx context.Context, since time.Time, afterSeq int64) (bool, error) {
	type place struct{ at, head sql.NullInt64 }
	p, err := row(ctx, s, func() error { return errs.New(errs.Internal, "no row placing since in the audit log") }, func(scan func(...any) error) (place, error) {
		var p place
		if err := scan(&p.at, &p.head); err != nil {
			return p, errs.Wrap(errs.Internal, err, "read where since falls in the audit log")
		}
		return p, nil
	}, "SELECT (SELECT seq FROM events WHERE time >= ? ORDER BY time LIMIT 1), (SELECT MAX(seq) FROM events)", since.UnixNano())
	if err != nil {
		return false, err
	}
	if !p.at.Valid { // nothing at or after since: the range is empty
		return true, nil
	}
	return p.head.Int64-p.at.Int64 < p.at.Int64-afterSeq, nil
}

// IssuedCertificates implements store.Store and audit.Reader.
func (s *Store) IssuedCertificates(ctx context.Context, fn func(serial string, issueSeq int64) error) error {
	q := `SELECT serial, issue_seq FROM certificates
		UNION ALL SELECT 'ssh:' || serial, issue_seq FROM ssh_certificates ORDER BY issue_seq`
	return s.each(ctx, true, q, nil, func(rows *sql.Rows) error {
		var serial string
		var seq int64
		if err := rows.Scan(&serial, &seq); err != nil {
			return errs.Wrap(errs.Internal, err, "read certificate")
		}
		return fn(serial, seq)
	})
}
