package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
	"signet/internal/store/columns"
)

func init() {
	for k, v := range map[string]string{
		"acmeAccountCheck": `SELECT EXISTS (SELECT 1 FROM acme_accounts WHERE authority = ? AND key_id = ? AND id != ?),
			EXISTS (SELECT 1 FROM authorities WHERE name = ?)`,
		"acmeAccount": `INSERT INTO acme_accounts (id, authority, key_id, jwk, contacts, status, eab_kid, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		"acmeAccountUpdate": `UPDATE acme_accounts SET key_id = ?, jwk = ?, contacts = ?, status = ? WHERE id = ?`,
		"acmeAccountExists": `SELECT EXISTS (SELECT 1 FROM acme_accounts WHERE id = ?), 0`,
		"eabState":          `SELECT authority, COALESCE(account_id, '') FROM acme_eab_keys WHERE kid = ?`,
		"eabBind":           `UPDATE acme_eab_keys SET account_id = ? WHERE kid = ?`,
		"eabCheck":          `SELECT EXISTS (SELECT 1 FROM acme_eab_keys WHERE kid = ?), EXISTS (SELECT 1 FROM authorities WHERE name = ?)`,
		"eab":               `INSERT INTO acme_eab_keys (kid, authority, sealed, created_at) VALUES (?, ?, ?, ?)`,
		"acmeOrderCheck":    `SELECT EXISTS (SELECT 1 FROM acme_orders WHERE id = ?), EXISTS (SELECT 1 FROM acme_accounts WHERE id = ? AND authority = ?)`,
		"acmeOrder": `INSERT INTO acme_orders (id, authority, account_id, status, expires, cert_serial, replaces, body, created_at, version)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`,
		"acmeOrderVersion": `SELECT version FROM acme_orders WHERE id = ?`,
		"acmeOrderUpdate": `UPDATE acme_orders SET status = ?, expires = ?, cert_serial = ?, replaces = ?, body = ?, version = version + 1
			WHERE id = ? AND version = ?`,
		"acmeOrderDelete": `DELETE FROM acme_orders WHERE (expires < ?1 AND cert_serial IS NULL)
			OR cert_serial IN (SELECT serial FROM certificates WHERE not_after < ?1)`,
		"secretPut": `INSERT OR IGNORE INTO secrets (name, value, created_at) VALUES (?, ?, ?)`,
	} {
		writeStatements[k] = v
	}
}

// CreateACMEAccount implements store.Store.
func (s *Store) CreateACMEAccount(ctx context.Context, a store.ACMEAccount, ev audit.Event) error {
	a, ev, err := store.PrepareCreateACMEAccount(a, ev, s.now)
	if err != nil {
		return err
	}
	contacts := columns.EncodeContacts(a)
	check := func(t *tx) error {
		taken, authority, err := t.exists("acmeAccountCheck", a.Authority, a.KeyID, a.ID, a.Authority)
		if err != nil {
			return errs.Wrap(errs.Internal, err, "look up ACME account key")
		}
		if err := store.CheckCreateACMEAccount(a, taken, authority); err != nil || a.EABKeyID == "" {
			return err
		}
		var auth, bound string
		err = t.w.stmt["eabState"].QueryRowContext(t.ctx, a.EABKeyID).Scan(&auth, &bound)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return errs.Wrap(errs.Internal, err, "look up external account binding key")
		}
		return store.CheckBindEABKey(a, auth, bound)
	}
	return s.w.do(ctx, check, func(t *tx) error {
		if err := t.appendEvent(&ev); err != nil {
			return err
		}
		_, err := t.exec("acmeAccount", a.ID, a.Authority, a.KeyID, a.Key, contacts, a.Status,
			columns.NullString(a.EABKeyID), a.CreatedAt.UnixNano())
		if err != nil {
			return constraintError(err, "ACME account %s", a.ID)
		}
		if a.EABKeyID != "" {
			if _, err := t.exec("eabBind", a.ID, a.EABKeyID); err != nil {
				return errs.Wrap(errs.Internal, err, "bind external account binding key")
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
		taken, _, err := t.exists("acmeAccountCheck", a.Authority, a.KeyID, a.ID, a.Authority)
		if err != nil {
			return errs.Wrap(errs.Internal, err, "look up ACME account key")
		}
		exists := true // a taken key is refused first: no need to look
		if !taken {
			if exists, _, err = t.exists("acmeAccountExists", a.ID); err != nil {
				return errs.Wrap(errs.Internal, err, "look up ACME account")
			}
		}
		return store.CheckUpdateACMEAccount(a, taken, exists)
	}
	return s.w.do(ctx, check, func(t *tx) error {
		if err := t.appendEvent(&ev); err != nil {
			return err
		}
		_, err := t.exec("acmeAccountUpdate", a.KeyID, a.Key, contacts, a.Status, a.ID)
		return constraintError(err, "ACME account %s", a.ID)
	})
}

// ACMEAccount implements store.Store.
func (s *Store) ACMEAccount(ctx context.Context, id string) (store.ACMEAccount, error) {
	return s.acmeAccount(ctx, "SELECT "+columns.ACMEAccountColumns+" FROM acme_accounts WHERE id = ?", id)
}

// ACMEAccountByKey implements store.Store.
func (s *Store) ACMEAccountByKey(ctx context.Context, authority, keyID string) (store.ACMEAccount, error) {
	return s.acmeAccount(ctx, "SELECT "+columns.ACMEAccountColumns+" FROM acme_accounts WHERE authority = ? AND key_id = ?", authority, keyID)
}

func (s *Store) acmeAccount(ctx context.Context, q string, args ...any) (store.ACMEAccount, error) {
	var a store.ACMEAccount
	found := false
	err := s.each(ctx, q, args, func(rows *sql.Rows) error {
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
		exists, account, err := t.exists("acmeOrderCheck", o.ID, o.AccountID, o.Authority)
		if err != nil {
			return errs.Wrap(errs.Internal, err, "look up ACME order")
		}
		return store.CheckCreateACMEOrder(o, exists, account)
	}
	return s.w.do(ctx, check, func(t *tx) error {
		_, err := t.exec("acmeOrder", o.ID, o.Authority, o.AccountID, o.Status, o.Expires.UnixNano(),
			columns.NullString(o.CertSerial), columns.NullString(o.Replaces), body, o.CreatedAt.UnixNano())
		return constraintError(err, "ACME order %s", o.ID)
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

// ACMEOrder implements store.Store.
func (s *Store) ACMEOrder(ctx context.Context, id string) (store.ACMEOrder, error) {
	os, err := s.acmeOrders(ctx, "SELECT "+columns.OrderColumns+" FROM acme_orders WHERE id = ?", id)
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
	for _, c := range []struct{ col, v string }{{"account_id", f.AccountID}, {"cert_serial", f.CertSerial}, {"replaces", f.Replaces}} {
		if c.v != "" {
			where = append(where, c.col+" = ?")
			args = append(args, c.v)
		}
	}
	if f.AfterID != "" {
		where = append(where, "id > ?")
		args = append(args, f.AfterID)
	}
	q := "SELECT " + columns.OrderColumns + " FROM acme_orders WHERE " + strings.Join(where, " AND ") + " ORDER BY id"
	if f.Limit > 0 {
		q += " LIMIT " + itoa(int64(f.Limit))
	}
	return s.acmeOrders(ctx, q, args...)
}

func (s *Store) acmeOrders(ctx context.Context, q string, args ...any) ([]store.ACMEOrder, error) {
	var out []store.ACMEOrder
	err := s.each(ctx, q, args, func(r *sql.Rows) error {
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
		res, err := t.exec("acmeOrderDelete", before.UnixNano())
		if err != nil {
			return errs.Wrap(errs.Internal, err, "delete stale ACME orders")
		}
		n, err = res.RowsAffected()
		return err
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
		exists, authority, err := t.exists("eabCheck", k.ID, k.Authority)
		if err != nil {
			return errs.Wrap(errs.Internal, err, "look up external account binding key")
		}
		return store.CheckCreateEABKey(k, exists, authority)
	}
	return s.w.do(ctx, check, func(t *tx) error {
		if err := t.appendEvent(&ev); err != nil {
			return err
		}
		_, err := t.exec("eab", k.ID, k.Authority, k.Sealed, k.CreatedAt.UnixNano())
		return constraintError(err, "external account binding key %q", k.ID)
	})
}

// EABKey implements store.Store.
func (s *Store) EABKey(ctx context.Context, id string) (store.EABKey, error) {
	var k store.EABKey
	found := false
	err := s.each(ctx, "SELECT "+columns.EABKeyColumns+" FROM acme_eab_keys WHERE kid = ?",
		[]any{id}, func(rows *sql.Rows) error {
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

// Secret implements store.Store.
func (s *Store) Secret(ctx context.Context, name string, value []byte) ([]byte, error) {
	if err := store.CheckSecret(name, value); err != nil {
		return nil, err
	}
	err := s.w.do(ctx, func(*tx) error { return nil }, func(t *tx) error {
		_, err := t.exec("secretPut", name, value, s.now().UnixNano())
		return constraintError(err, "secret %q", name)
	})
	if err != nil {
		return nil, err
	}
	var out []byte
	err = s.each(ctx, "SELECT value FROM secrets WHERE name = ?", []any{name}, func(rows *sql.Rows) error {
		return rows.Scan(&out)
	})
	if err == nil && out == nil {
		err = errs.New(errs.Internal, "secret %q vanished", name)
	}
	return out, err
}

// checkOrderVersion reads an order's version for store.CheckACMEOrderVersion.
func (t *tx) checkOrderVersion(id string, version int64) error {
	var v int64
	err := t.w.stmt["acmeOrderVersion"].QueryRowContext(t.ctx, id).Scan(&v)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return errs.Wrap(errs.Internal, err, "read ACME order %s", id)
	}
	return store.CheckACMEOrderVersion(id, v, version)
}

// updateOrder writes o if it is still at o.Version, else errs.Conflict.
func (t *tx) updateOrder(o store.ACMEOrder, body []byte) error {
	res, err := t.exec("acmeOrderUpdate", o.Status, o.Expires.UnixNano(), columns.NullString(o.CertSerial),
		columns.NullString(o.Replaces), body, o.ID, o.Version)
	if err != nil {
		return constraintError(err, "ACME order %s", o.ID)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return errs.Wrap(errs.Internal, err, "update ACME order %s", o.ID)
	}
	if n != 1 {
		return errs.New(errs.Conflict, "ACME order %s changed meanwhile", o.ID)
	}
	return nil
}
