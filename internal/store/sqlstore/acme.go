package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"time"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
	"signet/internal/store/columns"
)

const acmeAccountCheck = `SELECT EXISTS (SELECT 1 FROM acme_accounts WHERE authority = ? AND key_id = ? AND id != ?),
	EXISTS (SELECT 1 FROM authorities WHERE name = ?)`

// The ACME writes go through the writer like every other: the lock its
// transactions take serializes them across processes, so an order's
// version check and update are one atomic step whichever node runs them
// (two nodes finalizing one order: one wins, the other gets errs.Conflict).

// CreateACMEAccount implements store.Store.
func (s *Store) CreateACMEAccount(ctx context.Context, a store.ACMEAccount, ev audit.Event) error {
	a, ev, err := store.PrepareCreateACMEAccount(a, ev, s.now)
	if err != nil {
		return err
	}
	contacts := columns.EncodeContacts(a)
	check := func(t *tx) error {
		taken, authority, err := t.exists(acmeAccountCheck, a.Authority, a.KeyID, a.ID, a.Authority)
		if err != nil {
			return s.d.Error(err, "look up ACME account key")
		}
		if err := store.CheckCreateACMEAccount(a, taken, authority); err != nil || a.EABKeyID == "" {
			return err
		}
		var auth, bound string
		err = t.queryRow("SELECT authority, COALESCE(account_id, '') FROM acme_eab_keys WHERE kid = ?", a.EABKeyID).Scan(&auth, &bound)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return s.d.Error(err, "look up external account binding key")
		}
		return store.CheckBindEABKey(a, auth, bound)
	}
	return s.w.do(ctx, check, func(t *tx) error {
		_, err := t.exec(`INSERT INTO acme_accounts (id, authority, key_id, jwk, contacts, status, eab_kid, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, a.ID, a.Authority, a.KeyID, a.Key, contacts, a.Status,
			columns.NullString(a.EABKeyID), a.CreatedAt.UnixNano())
		if err != nil {
			return s.d.Error(err, "ACME account %s", a.ID)
		}
		changed, err := t.state(&stateACMEAccounts, "id = ?", a.ID)
		if err != nil {
			return err
		}
		if a.EABKeyID != "" {
			if _, err = t.exec("UPDATE acme_eab_keys SET account_id = ? WHERE kid = ?", a.ID, a.EABKeyID); err != nil {
				return s.d.Error(err, "bind external account binding key")
			}
			rows, err := t.state(&stateEABKeys, "kid = ?", a.EABKeyID)
			if err != nil {
				return err
			}
			changed = append(changed, rows...)
		}
		return t.appendEvent(&ev, changed...)
	})
}

// UpdateACMEAccountContacts implements store.Store.
func (s *Store) UpdateACMEAccountContacts(ctx context.Context, a store.ACMEAccount, contacts []string, ev audit.Event) error {
	a.Contacts = contacts
	return s.changeAccount(ctx, a, "acme.account.update", ev, nil,
		"UPDATE acme_accounts SET contacts = ? WHERE id = ? AND key_id = ? AND status = ?", columns.EncodeContacts(a))
}

// ChangeACMEAccountKey implements store.Store.
func (s *Store) ChangeACMEAccountKey(ctx context.Context, a store.ACMEAccount, keyID string, key []byte, ev audit.Event) error {
	if keyID == "" || len(key) == 0 {
		return errs.New(errs.Malformed, "ACME account %s: the new key is empty", a.ID)
	}
	taken := func(t *tx) error {
		var taken bool
		err := t.queryRow("SELECT EXISTS (SELECT 1 FROM acme_accounts WHERE authority = ? AND key_id = ? AND id != ?)",
			a.Authority, keyID, a.ID).Scan(&taken)
		if err != nil {
			return s.d.Error(err, "look up ACME account key")
		}
		return store.CheckChangeACMEAccountKey(taken)
	}
	return s.changeAccount(ctx, a, "acme.account.key-change", ev, taken,
		"UPDATE acme_accounts SET key_id = ?, jwk = ? WHERE id = ? AND key_id = ? AND status = ?", keyID, key)
}

// DeactivateACMEAccount implements store.Store.
func (s *Store) DeactivateACMEAccount(ctx context.Context, a store.ACMEAccount, ev audit.Event) error {
	return s.changeAccount(ctx, a, "acme.account.deactivate", ev, nil,
		"UPDATE acme_accounts SET status = ? WHERE id = ? AND key_id = ? AND status = ?", store.StatusDeactivated)
}

// changeAccount runs one compare-and-set account change: update sets the
// change's columns (set, its arguments) where the account is a.ID, still
// at key a.KeyID and valid; check, if any, is the change's own rule.
func (s *Store) changeAccount(ctx context.Context, a store.ACMEAccount, kind string, ev audit.Event, check func(*tx) error, update string, set ...any) error {
	ev, err := store.PrepareChangeACMEAccount(a, kind, ev)
	if err != nil {
		return err
	}
	rule := func(t *tx) error {
		var keyID, status string
		err := t.queryRow("SELECT key_id, status FROM acme_accounts WHERE id = ?", a.ID).Scan(&keyID, &status)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return s.d.Error(err, "look up ACME account")
		}
		if err := store.CheckChangeACMEAccount(a, keyID, status); err != nil || check == nil {
			return err
		}
		return check(t)
	}
	return s.w.do(ctx, rule, func(t *tx) error {
		res, err := t.exec(update, append(set, a.ID, a.KeyID, store.StatusValid)...)
		var n int64
		if err == nil {
			n, err = res.RowsAffected()
		}
		if err != nil {
			return s.d.Error(err, "ACME account %s", a.ID)
		}
		if n != 1 {
			return errs.New(errs.Conflict, "ACME account %s changed meanwhile", a.ID)
		}
		rows, err := t.state(&stateACMEAccounts, "id = ?", a.ID)
		if err != nil {
			return err
		}
		return t.appendEvent(&ev, rows...)
	})
}

// ACMEAccount implements store.Store.
func (s *Store) ACMEAccount(ctx context.Context, id string) (store.ACMEAccount, error) {
	return row(ctx, s, accountNotFound, columns.ScanACMEAccount,
		"SELECT "+columns.ACMEAccountColumns+" FROM acme_accounts WHERE id = ?", id)
}

// ACMEAccountByKey implements store.Store.
func (s *Store) ACMEAccountByKey(ctx context.Context, authority, keyID string) (store.ACMEAccount, error) {
	return row(ctx, s, accountNotFound, columns.ScanACMEAccount,
		"SELECT "+columns.ACMEAccountColumns+" FROM acme_accounts WHERE authority = ? AND key_id = ?", authority, keyID)
}

// ACMEAccounts implements store.Store.
func (s *Store) ACMEAccounts(ctx context.Context, f store.ACMEAccountFilter) ([]store.ACMEAccount, error) {
	var where []string
	var args []any
	for _, c := range []struct{ cond, v string }{{"authority = ?", f.Authority}, {"status = ?", f.Status}, {"id > ?", f.AfterID}} {
		if c.v != "" {
			where = append(where, c.cond)
			args = append(args, c.v)
		}
	}
	q, args := listing("SELECT "+columns.ACMEAccountColumns+" FROM acme_accounts", where, "id", f.Limit, args)
	return rows(ctx, s, columns.ScanACMEAccount, q, args...)
}

func accountNotFound() error { return errs.New(errs.NotFound, "ACME account not found") }

// CreateACMEOrder implements store.Store.
func (s *Store) CreateACMEOrder(ctx context.Context, o store.ACMEOrder, ev audit.Event) error {
	o, ev, err := store.PrepareCreateACMEOrder(o, ev, s.now)
	if err != nil {
		return err
	}
	body, err := columns.EncodeOrder(o)
	if err != nil {
		return err
	}
	check := func(t *tx) error {
		exists, account, err := t.exists(`SELECT EXISTS (SELECT 1 FROM acme_orders WHERE id = ?),
			EXISTS (SELECT 1 FROM acme_accounts WHERE id = ? AND authority = ?)`, o.ID, o.AccountID, o.Authority)
		if err != nil {
			return s.d.Error(err, "look up ACME order")
		}
		return store.CheckCreateACMEOrder(o, exists, account)
	}
	return s.w.do(ctx, check, func(t *tx) error {
		if err := t.appendEvent(&ev); err != nil {
			return err
		}
		_, err := t.exec(`INSERT INTO acme_orders (id, authority, account_id, status, expires, cert_serial, replaces, body, created_at, version, pending_authzs)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?)`, o.ID, o.Authority, o.AccountID, o.Status, o.Expires.UnixNano(),
			columns.NullString(o.CertSerial), columns.NullString(o.Replaces), body, o.CreatedAt.UnixNano(), o.PendingAuthzs())
		if err != nil {
			return s.d.Error(err, "ACME order %s", o.ID)
		}
		return t.keepReusable(o, true)
	})
}

// UpdateACMEOrder implements store.Store.
func (s *Store) UpdateACMEOrder(ctx context.Context, o store.ACMEOrder, ev audit.Event) error {
	ev, err := store.PrepareUpdateACMEOrder(o, ev)
	if err != nil {
		return err
	}
	body, err := columns.EncodeOrder(o)
	if err != nil {
		return err
	}
	check := func(t *tx) error { return t.checkOrderVersion(o.ID, o.Version) }
	return s.w.do(ctx, check, func(t *tx) error {
		if err := t.updateOrder(o, body); err != nil {
			return err
		}
		if err := t.keepReusable(o, false); err != nil {
			return err
		}
		return t.appendEvent(&ev)
	})
}

// ACMEOrder implements store.Store.
func (s *Store) ACMEOrder(ctx context.Context, id string) (store.ACMEOrder, error) {
	return row(ctx, s, func() error { return errs.New(errs.NotFound, "ACME order %s not found", id) },
		columns.ScanOrder, "SELECT "+columns.OrderColumns+" FROM acme_orders WHERE id = ?", id)
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
	q, args := listing("SELECT "+columns.OrderColumns+" FROM acme_orders", where, "id", f.Limit, args)
	return rows(ctx, s, columns.ScanOrder, q, args...)
}

// ACMEAccountLoad implements store.Store. Both counts are index-only
// ranges (migration "acme_orders_account_created" and "..._pending"): the
// account's orders created since since, however many live orders it
// holds, and those of its live orders that still have pending
// authorizations, which validation empties.
func (s *Store) ACMEAccountLoad(ctx context.Context, accountID string, since, now time.Time) (store.ACMEAccountLoad, error) {
	var l store.ACMEAccountLoad
	err := s.each(ctx, false, `SELECT
		(SELECT COUNT(*) FROM acme_orders WHERE account_id = ? AND created_at >= ?),
		(SELECT COALESCE(SUM(pending_authzs), 0) FROM acme_orders WHERE account_id = ? AND expires > ? AND pending_authzs > 0)`,
		[]any{accountID, since.UnixNano(), accountID, now.UnixNano()}, func(rows *sql.Rows) error {
			return rows.Scan(&l.OrdersSince, &l.PendingAuthzs)
		})
	return l, s.d.Error(err, "count the orders of ACME account %s", accountID)
}

// ReusableACMEOrders implements store.Store.
func (s *Store) ReusableACMEOrders(ctx context.Context, accountID string, keys []string, now time.Time, limit int) ([]store.ACMEOrder, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	args := []any{accountID, now.UnixNano()}
	for _, k := range keys {
		args = append(args, k)
	}
	return rows(ctx, s, columns.ScanOrder, "SELECT "+columns.OrderColumns+` FROM acme_orders WHERE id IN
		(SELECT order_id FROM acme_reusable_authzs WHERE account_id = ? AND expires > ? AND identifier IN (?`+
		strings.Repeat(", ?", len(keys)-1)+`)) ORDER BY id DESC LIMIT ?`, append(args, limit)...)
}

// keepReusable keeps acme_reusable_authzs in step with o, just written:
// one row for each authorization that later orders may reuse. Only an
// authorization with an expiry of its own ever has a row, so an order
// without one (reuse off, or nothing validated yet) costs nothing. A
// finalize (store.FinalizeOrder) changes no authorization and skips it.
func (t *tx) keepReusable(o store.ACMEOrder, created bool) error {
	if !slices.ContainsFunc(o.Authzs, func(az store.ACMEAuthz) bool { return !az.Expires.IsZero() }) {
		return nil
	}
	if !created {
		if _, err := t.exec("DELETE FROM acme_reusable_authzs WHERE order_id = ?", o.ID); err != nil {
			return t.w.d.Error(err, "ACME order %s", o.ID)
		}
	}
	for n := range o.Authzs {
		if az := &o.Authzs[n]; az.Reusable() {
			_, err := t.exec("INSERT INTO acme_reusable_authzs (order_id, n, account_id, identifier, expires) VALUES (?, ?, ?, ?, ?)",
				o.ID, n, o.AccountID, az.ReuseKey(), az.Expires.UnixNano())
			if err != nil {
				return t.w.d.Error(err, "ACME order %s", o.ID)
			}
		}
	}
	return nil
}

// DeleteStaleACMEOrders implements store.Store.
func (s *Store) DeleteStaleACMEOrders(ctx context.Context, before time.Time, limit int) (int64, error) {
	var n int64
	err := s.w.do(ctx, func(*tx) error { return nil }, func(t *tx) error {
		res, err := t.exec(`DELETE FROM acme_orders WHERE id IN (SELECT id FROM acme_orders WHERE ((expires < ? AND cert_serial IS NULL)
			OR cert_serial IN (SELECT serial FROM certificates WHERE not_after < ?))
			AND NOT EXISTS (SELECT 1 FROM acme_reusable_authzs r WHERE r.order_id = acme_orders.id AND r.expires >= ?) LIMIT ?)`,
			before.UnixNano(), before.UnixNano(), before.UnixNano(), limit)
		if err == nil {
			n, err = res.RowsAffected()
		}
		return s.d.Error(err, "delete stale ACME orders")
	})
	if err != nil {
		return 0, err // the writer may still run it after ctx ended: n is its until do succeeds
	}
	return n, nil
}

// CreateEABKey implements store.Store.
func (s *Store) CreateEABKey(ctx context.Context, k store.EABKey, ev audit.Event) error {
	k, ev, err := store.PrepareCreateEABKey(k, ev, s.now)
	if err != nil {
		return err
	}
	check := func(t *tx) error {
		exists, authority, err := t.exists(`SELECT EXISTS (SELECT 1 FROM acme_eab_keys WHERE kid = ?),
			EXISTS (SELECT 1 FROM authorities WHERE name = ?)`, k.ID, k.Authority)
		if err != nil {
			return s.d.Error(err, "look up external account binding key")
		}
		return store.CheckCreateEABKey(k, exists, authority)
	}
	return s.w.do(ctx, check, func(t *tx) error {
		_, err := t.exec("INSERT INTO acme_eab_keys (kid, authority, sealed, created_at) VALUES (?, ?, ?, ?)",
			k.ID, k.Authority, k.Sealed, k.CreatedAt.UnixNano())
		if err != nil {
			return s.d.Error(err, "external account binding key %q", k.ID)
		}
		rows, err := t.state(&stateEABKeys, "kid = ?", k.ID)
		if err != nil {
			return err
		}
		return t.appendEvent(&ev, rows...)
	})
}

// EABKey implements store.Store.
func (s *Store) EABKey(ctx context.Context, id string) (store.EABKey, error) {
	return row(ctx, s, func() error { return errs.New(errs.NotFound, "external account binding key %q not found", id) },
		columns.ScanEABKey, "SELECT "+columns.EABKeyColumns+" FROM acme_eab_keys WHERE kid = ?", id)
}

// Secret implements store.Store: the first process to store a value wins.
func (s *Store) Secret(ctx context.Context, name string, value []byte) ([]byte, error) {
	if err := store.CheckSecret(name, value); err != nil {
		return nil, err
	}
	err := s.w.do(ctx, func(*tx) error { return nil }, func(t *tx) error {
		_, err := t.exec("INSERT INTO secrets (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
			name, value, s.now().UnixNano())
		return s.d.Error(err, "secret %q", name)
	})
	if err != nil {
		return nil, err
	}
	var out []byte
	err = s.each(ctx, false, "SELECT value FROM secrets WHERE name = ?", []any{name}, func(rows *sql.Rows) error {
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
	err := t.queryRow("SELECT version FROM acme_orders WHERE id = ?", id).Scan(&v)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return t.w.d.Error(err, "read ACME order %s", id)
	}
	return store.CheckACMEOrderVersion(id, v, version)
}

// updateOrder writes o if it is still at o.Version, else errs.Conflict.
func (t *tx) updateOrder(o store.ACMEOrder, body []byte) error {
	res, err := t.exec(`UPDATE acme_orders SET status = ?, expires = ?, cert_serial = ?, replaces = ?, body = ?, pending_authzs = ?, version = version + 1
		WHERE id = ? AND version = ?`, o.Status, o.Expires.UnixNano(), columns.NullString(o.CertSerial),
		columns.NullString(o.Replaces), body, o.PendingAuthzs(), o.ID, o.Version)
	var n int64
	if err == nil {
		n, err = res.RowsAffected()
	}
	if err != nil {
		return t.w.d.Error(err, "ACME order %s", o.ID)
	}
	if n != 1 {
		return errs.New(errs.Conflict, "ACME order %s changed meanwhile", o.ID)
	}
	return nil
}
