package postgres

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
	"signet/internal/store/columns"
)

// The ACME writes go through the writer like every other: its chain lock
// serializes them across nodes, so an order's version check and update are
// one atomic step whichever node runs them (two nodes finalizing one order:
// one wins, the other gets errs.Conflict).

const (
	acmeAccountCheck = `SELECT EXISTS (SELECT 1 FROM acme_accounts WHERE authority = $1 AND key_id = $2 AND id != $3),
		EXISTS (SELECT 1 FROM authorities WHERE name = $1)`
)

// CreateACMEAccount implements store.Store.
func (s *Store) CreateACMEAccount(ctx context.Context, a store.ACMEAccount, ev audit.Event) error {
	a, ev, err := store.PrepareCreateACMEAccount(a, ev, s.now)
	if err != nil {
		return err
	}
	contacts := columns.EncodeContacts(a)
	check := func(t *tx) error {
		taken, authority, err := t.exists(acmeAccountCheck, a.Authority, a.KeyID, a.ID)
		if err != nil {
			return dbError(err, "look up ACME account key")
		}
		if err := store.CheckCreateACMEAccount(a, taken, authority); err != nil || a.EABKeyID == "" {
			return err
		}
		var auth, bound string
		err = t.tx.QueryRow(t.ctx, `SELECT authority, COALESCE(account_id, '') FROM acme_eab_keys WHERE kid = $1`, a.EABKeyID).Scan(&auth, &bound)
		if err != nil && !isNoRows(err) {
			return dbError(err, "look up external account binding key")
		}
		return store.CheckBindEABKey(a, auth, bound)
	}
	return s.w.do(ctx, check, func(t *tx) error {
		if err := t.appendEvent(&ev); err != nil {
			return err
		}
		_, err := t.exec(`INSERT INTO acme_accounts (id, authority, key_id, jwk, contacts, status, eab_kid, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, a.ID, a.Authority, a.KeyID, a.Key, contacts, a.Status,
			columns.NullString(a.EABKeyID), a.CreatedAt.UnixNano())
		if err != nil {
			return dbError(err, "ACME account %s", a.ID)
		}
		if a.EABKeyID != "" {
			if _, err := t.exec(`UPDATE acme_eab_keys SET account_id = $1 WHERE kid = $2`, a.ID, a.EABKeyID); err != nil {
				return dbError(err, "bind external account binding key")
			}
		}
		return nil
	})
}

// UpdateACMEAccount implements store.Store.
func (s *Store) UpdateACMEAccount(ctx context.Context, a store.ACMEAccount, ev audit.Event) error {
	ev, err := store.PrepareUpdateACMEAccount(a, ev)
	if err != nil {
		return err
	}
	contacts := columns.EncodeContacts(a)
	check := func(t *tx) error {
		var taken, exists bool
		err := t.tx.QueryRow(t.ctx, `SELECT EXISTS (SELECT 1 FROM acme_accounts WHERE authority = $1 AND key_id = $2 AND id != $3),
			EXISTS (SELECT 1 FROM acme_accounts WHERE id = $3)`, a.Authority, a.KeyID, a.ID).Scan(&taken, &exists)
		if err != nil {
			return dbError(err, "look up ACME account")
		}
		return store.CheckUpdateACMEAccount(a, taken, exists)
	}
	return s.w.do(ctx, check, func(t *tx) error {
		if err := t.appendEvent(&ev); err != nil {
			return err
		}
		_, err := t.exec(`UPDATE acme_accounts SET key_id = $1, jwk = $2, contacts = $3, status = $4 WHERE id = $5`,
			a.KeyID, a.Key, contacts, a.Status, a.ID)
		return dbError(err, "ACME account %s", a.ID)
	})
}

// ACMEAccount implements store.Store.
func (s *Store) ACMEAccount(ctx context.Context, id string) (store.ACMEAccount, error) {
	return s.acmeAccount(ctx, "SELECT "+columns.ACMEAccountColumns+" FROM acme_accounts WHERE id = $1", id)
}

// ACMEAccountByKey implements store.Store.
func (s *Store) ACMEAccountByKey(ctx context.Context, authority, keyID string) (store.ACMEAccount, error) {
	return s.acmeAccount(ctx, "SELECT "+columns.ACMEAccountColumns+" FROM acme_accounts WHERE authority = $1 AND key_id = $2", authority, keyID)
}

func (s *Store) acmeAccount(ctx context.Context, q string, args ...any) (store.ACMEAccount, error) {
	var a store.ACMEAccount
	found := false
	err := s.each(ctx, false, q, args, func(rows pgx.Rows) error {
		var err error
		a, err = columns.ScanACMEAccount(rows.Scan)
		found = true
		return err
	})
	if err == nil && !found {
		err = errs.New(errs.NotFound, "ACME account not found")
	}
	return a, err
}

// CreateACMEOrder implements store.Store.
func (s *Store) CreateACMEOrder(ctx context.Context, o store.ACMEOrder) error {
	o, err := store.PrepareCreateACMEOrder(o, s.now)
	if err != nil {
		return err
	}
	body, err := columns.EncodeOrder(o)
	if err != nil {
		return err
	}
	check := func(t *tx) error {
		exists, account, err := t.exists(`SELECT EXISTS (SELECT 1 FROM acme_orders WHERE id = $1),
			EXISTS (SELECT 1 FROM acme_accounts WHERE id = $2 AND authority = $3)`, o.ID, o.AccountID, o.Authority)
		if err != nil {
			return dbError(err, "look up ACME order")
		}
		return store.CheckCreateACMEOrder(o, exists, account)
	}
	return s.w.do(ctx, check, func(t *tx) error {
		_, err := t.exec(`INSERT INTO acme_orders (id, authority, account_id, status, expires, cert_serial, replaces, body, created_at, version)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1)`, o.ID, o.Authority, o.AccountID, o.Status, o.Expires.UnixNano(),
			columns.NullString(o.CertSerial), columns.NullString(o.Replaces), body, o.CreatedAt.UnixNano())
		return dbError(err, "ACME order %s", o.ID)
	})
}

// UpdateACMEOrder implements store.Store.
func (s *Store) UpdateACMEOrder(ctx context.Context, o store.ACMEOrder) error {
	if err := store.CheckACMEOrder(o); err != nil {
		return err
	}
	body, err := columns.EncodeOrder(o)
	if err != nil {
		return err
	}
	check := func(t *tx) error { return t.checkOrderVersion(o.ID, o.Version) }
	return s.w.do(ctx, check, func(t *tx) error { return t.updateOrder(o, body) })
}

// checkOrderVersion reads an order's version for store.CheckACMEOrderVersion.
func (t *tx) checkOrderVersion(id string, version int64) error {
	var v int64
	err := t.tx.QueryRow(t.ctx, `SELECT version FROM acme_orders WHERE id = $1`, id).Scan(&v)
	if err != nil && !isNoRows(err) {
		return dbError(err, "read ACME order %s", id)
	}
	return store.CheckACMEOrderVersion(id, v, version)
}

// updateOrder writes o if it is still at o.Version, else errs.Conflict.
func (t *tx) updateOrder(o store.ACMEOrder, body []byte) error {
	tag, err := t.exec(`UPDATE acme_orders SET status = $1, expires = $2, cert_serial = $3, replaces = $4, body = $5,
		version = version + 1 WHERE id = $6 AND version = $7`, o.Status, o.Expires.UnixNano(), columns.NullString(o.CertSerial),
		columns.NullString(o.Replaces), body, o.ID, o.Version)
	if err == nil && tag.RowsAffected() != 1 {
		return errs.New(errs.Conflict, "ACME order %s changed meanwhile", o.ID)
	}
	return dbError(err, "ACME order %s", o.ID)
}

// ACMEOrder implements store.Store.
func (s *Store) ACMEOrder(ctx context.Context, id string) (store.ACMEOrder, error) {
	os, err := s.acmeOrders(ctx, "SELECT "+columns.OrderColumns+" FROM acme_orders WHERE id = $1", id)
	if err == nil && len(os) == 0 {
		err = errs.New(errs.NotFound, "ACME order %s not found", id)
	}
	if err != nil {
		return store.ACMEOrder{}, err
	}
	return os[0], nil
}

// ACMEOrders implements store.Store.
func (s *Store) ACMEOrders(ctx context.Context, f store.ACMEOrderFilter) ([]store.ACMEOrder, error) {
	if err := store.CheckACMEOrderFilter(f); err != nil {
		return nil, err
	}
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, cond+" $"+strconv.Itoa(len(args)))
	}
	for _, c := range []struct{ col, v string }{{"account_id", f.AccountID}, {"cert_serial", f.CertSerial}, {"replaces", f.Replaces}} {
		if c.v != "" {
			add(c.col+" =", c.v)
		}
	}
	if f.AfterID != "" {
		add("id >", f.AfterID)
	}
	q := "SELECT " + columns.OrderColumns + " FROM acme_orders WHERE " + strings.Join(where, " AND ") + " ORDER BY id"
	if f.Limit > 0 {
		q += " LIMIT " + strconv.Itoa(f.Limit)
	}
	return s.acmeOrders(ctx, q, args...)
}

func (s *Store) acmeOrders(ctx context.Context, q string, args ...any) ([]store.ACMEOrder, error) {
	var out []store.ACMEOrder
	err := s.each(ctx, false, q, args, func(r pgx.Rows) error {
		o, err := columns.ScanOrder(r.Scan)
		out = append(out, o)
		return err
	})
	return out, err
}

// DeleteStaleACMEOrders implements store.Store.
func (s *Store) DeleteStaleACMEOrders(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.w.do(ctx, func(*tx) error { return nil }, func(t *tx) error {
		tag, err := t.exec(`DELETE FROM acme_orders WHERE (expires < $1 AND cert_serial IS NULL)
			OR cert_serial IN (SELECT serial FROM certificates WHERE not_after < $1)`, before.UnixNano())
		if err != nil {
			return dbError(err, "delete stale ACME orders")
		}
		n = tag.RowsAffected()
		return nil
	})
	return n, err
}

// CreateEABKey implements store.Store.
func (s *Store) CreateEABKey(ctx context.Context, k store.EABKey, ev audit.Event) error {
	k, ev, err := store.PrepareCreateEABKey(k, ev, s.now)
	if err != nil {
		return err
	}
	check := func(t *tx) error {
		exists, authority, err := t.exists(`SELECT EXISTS (SELECT 1 FROM acme_eab_keys WHERE kid = $1),
			EXISTS (SELECT 1 FROM authorities WHERE name = $2)`, k.ID, k.Authority)
		if err != nil {
			return dbError(err, "look up external account binding key")
		}
		return store.CheckCreateEABKey(k, exists, authority)
	}
	return s.w.do(ctx, check, func(t *tx) error {
		if err := t.appendEvent(&ev); err != nil {
			return err
		}
		_, err := t.exec(`INSERT INTO acme_eab_keys (kid, authority, sealed, created_at) VALUES ($1, $2, $3, $4)`,
			k.ID, k.Authority, k.Sealed, k.CreatedAt.UnixNano())
		return dbError(err, "external account binding key %q", k.ID)
	})
}

// EABKey implements store.Store.
func (s *Store) EABKey(ctx context.Context, id string) (store.EABKey, error) {
	var k store.EABKey
	found := false
	err := s.each(ctx, false, "SELECT "+columns.EABKeyColumns+" FROM acme_eab_keys WHERE kid = $1",
		[]any{id}, func(rows pgx.Rows) error {
			var err error
			k, err = columns.ScanEABKey(rows.Scan)
			found = true
			return err
		})
	if err == nil && !found {
		err = errs.New(errs.NotFound, "external account binding key %q not found", id)
	}
	return k, err
}

// Secret implements store.Store: the first node to store a value wins.
func (s *Store) Secret(ctx context.Context, name string, value []byte) ([]byte, error) {
	if err := store.CheckSecret(name, value); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var out []byte
	err := s.pool.QueryRow(ctx, `WITH ins AS (
			INSERT INTO secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING RETURNING value)
		SELECT value FROM ins UNION ALL SELECT value FROM secrets WHERE name = $1 LIMIT 1`, name, value, s.now().UnixNano()).Scan(&out)
	if isNoRows(err) {
		// Another node inserted it while this statement ran: its snapshot
		// predates that row; a new statement sees it.
		err = s.pool.QueryRow(ctx, `SELECT value FROM secrets WHERE name = $1`, name).Scan(&out)
	}
	if err != nil {
		return nil, dbError(err, "secret %q", name)
	}
	return out, nil
}
