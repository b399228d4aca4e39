package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"signet/internal/errs"
	"signet/internal/store"
	"signet/internal/store/columns"
)

var _ store.Published = (*Store)(nil)

// The last signed CRLs and OCSP responses (store.Published): one row per
// CRL shard and per (authority, CertID hash, serial), replaced by newer
// ones. Every publication takes the next number of the dialect's
// NextRevocationVersion in the writer's transaction, so versions grow in
// commit order and readers poll by them.

const (
	upsertCRLs = `INSERT INTO published_crls (authority, shard, der, this_update, next_update, version) VALUES `
	onCRL      = ` ON CONFLICT (authority, shard) DO UPDATE SET der = EXCLUDED.der, this_update = EXCLUDED.this_update,
		next_update = EXCLUDED.next_update, version = EXCLUDED.version`
	upsertOCSP = `INSERT INTO ocsp_responses (authority, hash, serial, revoked, der, this_update, next_update, version) VALUES `
	onOCSP     = ` ON CONFLICT (authority, hash, serial) DO UPDATE SET revoked = EXCLUDED.revoked, der = EXCLUDED.der,
		this_update = EXCLUDED.this_update, next_update = EXCLUDED.next_update, version = EXCLUDED.version`
)

// PublishRevocation implements store.Published.
func (s *Store) PublishRevocation(ctx context.Context, docs []store.RevocationDoc) error {
	// The last document of each row wins: one statement may not change a
	// row twice.
	type key struct {
		authority, hash, serial string
		shard                   int // -2 for an OCSP response (the whole CRL is -1)
	}
	keyOf := func(d store.RevocationDoc) key {
		if d.Kind == "crl" {
			return key{authority: d.Authority, shard: d.Shard}
		}
		return key{authority: d.Authority, hash: d.Hash, serial: d.Serial, shard: -2}
	}
	last := map[key]int{}
	for i, d := range docs {
		if d.Kind != "crl" && d.Kind != "ocsp" {
			return errs.New(errs.Malformed, "revocation document kind %q", d.Kind)
		}
		last[keyOf(d)] = i
	}
	var crls, ocsp [][]any
	for i, d := range docs {
		switch {
		case last[keyOf(d)] != i:
		case d.Kind == "crl":
			crls = append(crls, []any{d.Authority, d.Shard, d.DER, d.ThisUpdate.UnixNano(), d.NextUpdate.UnixNano()})
		default:
			ocsp = append(ocsp, []any{d.Authority, d.Hash, d.Serial, d.Revoked, d.DER, d.ThisUpdate.UnixNano(), d.NextUpdate.UnixNano()})
		}
	}
	if len(crls)+len(ocsp) == 0 {
		return nil
	}
	return s.w.do(ctx, func(*tx) error { return nil }, func(t *tx) error {
		var version int64
		if err := t.queryRow(s.d.NextRevocationVersion).Scan(&version); err != nil {
			return s.d.Error(err, "next revocation version")
		}
		if err := t.upsert(upsertCRLs, onCRL, crls, version); err != nil {
			return s.d.Error(err, "publish %d CRLs", len(crls))
		}
		return s.d.Error(t.upsert(upsertOCSP, onOCSP, ocsp, version), "publish %d OCSP responses", len(ocsp))
	})
}

// upsert writes rows, each followed by version, in statements of a
// power-of-two number of rows up to maxStagedRows, so that few statements
// are prepared.
func (t *tx) upsert(insert, then string, rows [][]any, version int64) error {
	for len(rows) > 0 {
		n := maxStagedRows
		for n > len(rows) {
			n /= 2
		}
		row := "(" + strings.Repeat("?, ", len(rows[0])) + "?)"
		q := insert + strings.Repeat(row+", ", n-1) + row + then
		var args []any
		for _, r := range rows[:n] {
			args = append(append(args, r...), version)
		}
		if _, err := t.exec(q, args...); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// PublishedCRLs implements store.Published.
func (s *Store) PublishedCRLs(ctx context.Context, after int64, fn func(store.RevocationDoc) error) (int64, error) {
	last := after
	err := s.each(ctx, true, `SELECT authority, shard, der, this_update, next_update, version FROM published_crls
		WHERE version > ? ORDER BY version`, []any{after}, func(rows *sql.Rows) error {
		d := store.RevocationDoc{Kind: "crl"}
		var this, next int64
		if err := rows.Scan(&d.Authority, &d.Shard, &d.DER, &this, &next, &d.Version); err != nil {
			return errs.Wrap(errs.Internal, err, "read published CRL")
		}
		d.ThisUpdate, d.NextUpdate, last = columns.Time(this), columns.Time(next), d.Version
		return fn(d)
	})
	return last, err
}

// PublishedOCSP implements store.Published.
func (s *Store) PublishedOCSP(ctx context.Context, authority, hash, serial string) (store.RevocationDoc, error) {
	return row(ctx, s, func() error {
		return errs.New(errs.NotFound, "no OCSP response published for %s of %s", serial, authority)
	}, func(scan func(...any) error) (store.RevocationDoc, error) {
		d := store.RevocationDoc{Kind: "ocsp", Authority: authority, Hash: hash, Serial: serial}
		var this, next int64
		if err := scan(&d.Revoked, &d.DER, &this, &next, &d.Version); err != nil {
			return d, errs.Wrap(errs.Internal, err, "read published OCSP response")
		}
		d.ThisUpdate, d.NextUpdate = columns.Time(this), columns.Time(next)
		return d, nil
	}, `SELECT revoked, der, this_update, next_update, version FROM ocsp_responses
		WHERE authority = ? AND hash = ? AND serial = ?`, authority, hash, serial)
}

// FreshOCSP implements store.Published: a range of the primary key per
// hash.
func (s *Store) FreshOCSP(ctx context.Context, authority, after, through string, since time.Time) (map[string]bool, error) {
	fresh := map[string]bool{}
	err := s.each(ctx, false, `SELECT serial, SUM(CASE WHEN revoked THEN 1 ELSE 0 END) FROM ocsp_responses
		WHERE authority = ? AND hash IN ('sha1', 'sha256') AND serial > ? AND serial <= ? AND this_update >= ?
		GROUP BY serial HAVING COUNT(*) = 2`, []any{authority, after, through, since.UnixNano()}, func(rows *sql.Rows) error {
		var serial string
		var revoked int64 // of the two
		if err := rows.Scan(&serial, &revoked); err != nil {
			return errs.Wrap(errs.Internal, err, "read published OCSP responses")
		}
		if revoked != 1 {
			fresh[serial] = revoked == 2
		}
		return nil
	})
	if err != nil {
		return nil, s.d.Error(err, "read published OCSP responses")
	}
	return fresh, nil
}

// PruneOCSP implements store.Published, in one transaction of the writer
// over the index on next_update.
func (s *Store) PruneOCSP(ctx context.Context, before time.Time, limit int) (int64, error) {
	var n int64
	err := s.w.do(ctx, func(*tx) error { return nil }, func(t *tx) error {
		res, err := t.exec(`DELETE FROM ocsp_responses WHERE (authority, hash, serial) IN
			(SELECT authority, hash, serial FROM ocsp_responses WHERE next_update < ? LIMIT ?)`, before.UnixNano(), limit)
		if err != nil {
			return s.d.Error(err, "prune OCSP responses")
		}
		n, err = res.RowsAffected()
		return s.d.Error(err, "prune OCSP responses")
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
