package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"signet/internal/audit"
	"signet/internal/store"
	"signet/internal/store/columns"
)

const (
	authCheck = `SELECT EXISTS (SELECT 1 FROM authorities WHERE name = ?),
		EXISTS (SELECT 1 FROM authorities WHERE name = ?)`
	certCheck = `SELECT EXISTS (SELECT 1 FROM certificates WHERE serial = ?),
		EXISTS (SELECT 1 FROM authorities WHERE name = ?)`
	insertAuthority = `INSERT INTO authorities (name, purpose, parent, key_uri, cert_der, policy,
		default_validity, max_validity, created_at, event_seq, base_url, shards, acme, require_eab, enabled)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

// CreateAuthority implements store.Store.
func (s *Store) CreateAuthority(ctx context.Context, a store.Authority, ev audit.Event) error {
	a, ev, err := store.PrepareCreateAuthority(a, ev, s.now)
	if err != nil {
		return err
	}
	check := func(t *tx) error { return t.checkNewAuthority(a) }
	return s.w.do(ctx, check, func(t *tx) error { return t.insertAuthority(a, &ev) })
}

// ChangeAuthority implements store.Store.
func (s *Store) ChangeAuthority(ctx context.Context, name string, ch store.AuthorityChange, ev audit.Event) error {
	ev, err := store.PrepareChangeAuthority(name, ch, ev)
	if err != nil {
		return err
	}
	check := func(t *tx) error {
		ok, err := t.authorityExists(name)
		if err != nil {
			return err
		}
		return store.CheckAuthorityExists(name, ok)
	}
	return s.w.do(ctx, check, func(t *tx) error {
		_, err := t.exec("UPDATE authorities SET acme = COALESCE(?, acme), require_eab = COALESCE(?, require_eab), enabled = COALESCE(?, enabled) WHERE name = ?",
			ch.ACME, ch.RequireEAB, ch.Enabled, name)
		if err != nil {
			return s.d.Error(err, "authority %q", name)
		}
		rows, err := t.state(&stateAuthorities, "name = ?", name)
		if err != nil {
			return err
		}
		return t.appendEvent(&ev, rows...)
	})
}

// SetKeyURI implements store.Store.
func (s *Store) SetKeyURI(ctx context.Context, from, to string, ev audit.Event) (int, error) {
	ev, err := store.PrepareSetKeyURI(from, to, ev)
	if err != nil {
		return 0, err
	}
	var rows int
	check := func(t *tx) error {
		err := t.queryRow(`SELECT (SELECT COUNT(*) FROM authorities WHERE key_uri = ?)
			+ (SELECT COUNT(*) FROM ssh_authority_keys WHERE key_uri = ?)`, from, from).Scan(&rows)
		if err != nil {
			return s.d.Error(err, "look up key URI")
		}
		return store.CheckSetKeyURI(rows)
	}
	err = s.w.do(ctx, check, func(t *tx) error {
		var changed []audit.Row
		for _, table := range []*stateTable{&stateAuthorities, &stateSSHKeys} {
			if _, err := t.exec("UPDATE "+table.name+" SET key_uri = ? WHERE key_uri = ?", to, from); err != nil {
				return s.d.Error(err, "rewrite key URI")
			}
			rows, err := t.state(table, "key_uri = ?", to)
			if err != nil {
				return err
			}
			changed = append(changed, rows...)
		}
		return t.appendEvent(&ev, changed...)
	})
	if err != nil {
		return 0, err
	}
	return rows, nil
}

// RecordCertificate implements store.Store.
func (s *Store) RecordCertificate(ctx context.Context, c store.Certificate, ev audit.Event) error {
	c, ev, err := store.PrepareRecordCertificate(c, ev)
	if err != nil {
		return err
	}
	sans, err := columns.EncodeSANs(c)
	if err != nil {
		return err
	}
	var order []byte
	var finalizes store.ACMEOrder
	if c.Rider != nil {
		finalizes = c.Rider.Finalizes()
		if order, err = columns.EncodeOrder(finalizes); err != nil {
			return err
		}
	}
	check := func(t *tx) error {
		if t.stage {
			// A taken serial is refused by the primary key at the flush,
			// which reruns the batch with a savepoint per request.
			ok, err := t.authorityExists(c.Authority)
			if err != nil {
				return err
			}
			return store.CheckRecordCertificate(c, false, ok)
		}
		exists, authority, err := t.exists(certCheck, c.Serial, c.Authority)
		if err != nil {
			return s.d.Error(err, "look up certificate %s", c.Serial)
		}
		if err := store.CheckRecordCertificate(c, exists, authority); err != nil {
			return err
		}
		if c.Rider != nil {
			return t.checkOrderVersion(finalizes.ID, finalizes.Version)
		}
		return nil
	}
	do := s.w.doStaged
	if c.Rider != nil {
		do = s.w.do // it updates the order
	}
	return do(ctx, check, func(t *tx) error {
		if c.Rider != nil {
			if err := t.updateOrder(finalizes, order); err != nil {
				return err
			}
		}
		row := []any{c.Serial, c.Authority, c.Subject, sans, c.NotBefore.UnixNano(), c.NotAfter.UnixNano(),
			string(c.Status), columns.NullTime(c.RevokedAt), c.RevocationReason, c.Requester, c.DER, t.next(), c.Shard, c.Internal}
		state, err := planCertificate.row(row)
		if err != nil {
			return err
		}
		if err := t.appendEvent(&ev, state); err != nil {
			return err
		}
		if t.stage {
			t.stageRow(stageCertificates, row...)
			for _, n := range columns.Names(c) {
				t.stageRow(stageCertificateNames, c.Serial, n.Type, n.Value)
			}
			return nil
		}
		if _, err := t.exec(insertCertificate, row...); err != nil {
			return s.d.Error(err, "certificate %s", c.Serial)
		}
		return s.d.Error(t.insertNames(c.Serial, columns.Names(c)), "record names of certificate %s", c.Serial)
	})
}

// Revoke implements store.Store.
func (s *Store) Revoke(ctx context.Context, serial string, at time.Time, reason int, ev audit.Event) error {
	ev, err := store.PrepareRevoke(serial, at, reason, ev)
	if err != nil {
		return err
	}
	check := func(t *tx) error {
		var status, authority string
		err := t.queryRow("SELECT status, authority FROM certificates WHERE serial = ?", serial).Scan(&status, &authority)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return s.d.Error(err, "read certificate %s", serial)
		}
		if err := store.CheckRevoke(serial, status); err != nil {
			return err
		}
		if ev.Authority == "" {
			ev.Authority = authority
		}
		return nil
	}
	return s.w.do(ctx, check, func(t *tx) error {
		_, err := t.exec("UPDATE certificates SET status = 'revoked', revoked_at = ?, reason = ?, revoke_seq = ? WHERE serial = ?",
			at.UnixNano(), reason, t.next(), serial)
		if err != nil {
			return s.d.Error(err, "revoke certificate %s", serial)
		}
		rows, err := t.state(&stateCertificates, "serial = ?", serial)
		if err != nil {
			return err
		}
		return t.appendEvent(&ev, rows...)
	})
}

// NextCRLNumbers implements store.Store.
func (s *Store) NextCRLNumbers(ctx context.Context, authority string, shards []int) ([]int64, error) {
	out := make([]int64, len(shards))
	check := func(t *tx) error {
		exists, _, err := t.exists(authCheck, authority, authority)
		if err != nil {
			return s.d.Error(err, "look up authority %q", authority)
		}
		return store.CheckAuthorityExists(authority, exists)
	}
	err := s.w.do(ctx, check, func(t *tx) error {
		for i, shard := range shards {
			err := t.queryRow(`INSERT INTO crl_numbers (authority, shard, number) VALUES (?, ?, 1)
				ON CONFLICT (authority, shard) DO UPDATE SET number = crl_numbers.number + 1 RETURNING number`,
				authority, shard).Scan(&out[i])
			if err != nil {
				return s.d.Error(err, "next CRL number of %s shard %d", authority, shard)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AppendEvent implements store.Store.
func (s *Store) AppendEvent(ctx context.Context, ev audit.Event) error {
	ev, err := store.PrepareAppendEvent(ev)
	if err != nil {
		return err
	}
	return s.w.do(ctx, func(*tx) error { return nil }, func(t *tx) error { return t.appendEvent(&ev) })
}

// checkNewAuthority reads what store.CheckCreateAuthority decides on.
func (t *tx) checkNewAuthority(a store.Authority) error {
	exists, parent, err := t.exists(authCheck, a.Name, a.Parent)
	if err != nil {
		return t.w.d.Error(err, "look up authority %q", a.Name)
	}
	return store.CheckCreateAuthority(a, exists, parent)
}

// insertAuthority writes an authority row and the event that records it.
// more are rows the same event creates after it (an SSH authority's key).
func (t *tx) insertAuthority(a store.Authority, ev *audit.Event, more ...audit.Row) error {
	row := []any{a.Name, a.Purpose, columns.NullString(a.Parent), a.KeyURI, columns.NullBytes(a.CertDER), columns.NullBytes(a.Policy),
		int64(a.DefaultValidity), int64(a.MaxValidity), a.CreatedAt.UnixNano(), t.next(), a.BaseURL, max(a.Shards, 1), a.ACME, a.RequireEAB, !a.Disabled}
	state, err := planAuthority.row(row)
	if err != nil {
		return err
	}
	if err := t.appendEvent(ev, append([]audit.Row{state}, more...)...); err != nil {
		return err
	}
	_, err = t.exec(insertAuthority, row...)
	return t.w.d.Error(err, "authority %q", a.Name)
}
