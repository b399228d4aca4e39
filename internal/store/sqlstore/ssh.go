package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"math"
	"time"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
	"signet/internal/store/columns"
)

const (
	insertSSHKey = `INSERT INTO ssh_authority_keys (authority, fingerprint, key_uri, public_key, state, created_at, event_seq)
		VALUES (?, ?, ?, ?, ?, ?, ?)`
	sshDemote = "UPDATE ssh_authority_keys SET state = 'trusted' WHERE authority = ? AND state = 'active'"
)

// CreateSSHAuthority implements store.Store.
func (s *Store) CreateSSHAuthority(ctx context.Context, a store.Authority, k store.SSHKey, ev audit.Event) error {
	a, k, ev, err := store.PrepareCreateSSHAuthority(a, k, ev, s.now)
	if err != nil {
		return err
	}
	check := func(t *tx) error { return t.checkNewAuthority(a) }
	return s.w.do(ctx, check, func(t *tx) error {
		key := []any{k.Authority, k.Fingerprint, k.KeyURI, k.PublicKey, string(k.State), k.CreatedAt.UnixNano(), t.next()}
		state, err := planSSHKey.row(key)
		if err != nil {
			return err
		}
		if err := t.insertAuthority(a, &ev, state); err != nil {
			return err
		}
		_, err = t.exec(insertSSHKey, key...)
		return s.d.Error(err, "SSH key %s of %q", k.Fingerprint, k.Authority)
	})
}

// demoteSSHKey makes the authority's active SSH CA key trusted and returns
// the keys it changed.
func (t *tx) demoteSSHKey(authority string) ([]audit.Row, error) {
	demoted, err := t.state(&stateSSHKeys, "authority = ? AND state = 'active'", authority)
	if err != nil {
		return nil, err
	}
	if _, err := t.exec(sshDemote, authority); err != nil {
		return nil, t.w.d.Error(err, "demote the active key of %q", authority)
	}
	for i, r := range demoted {
		fingerprint := r.Key[len(authority)+1:]
		rows, err := t.state(&stateSSHKeys, "authority = ? AND fingerprint = ?", authority, fingerprint)
		if err != nil {
			return nil, err
		}
		demoted[i] = rows[0]
	}
	return demoted, nil
}

// sshKeyState reads the state of an authority's SSH CA key ("" if it has
// no such key). While only staging requests run, a batch reads it once.
func (t *tx) sshKeyState(authority, fingerprint string) (string, error) {
	k := [2]string{authority, fingerprint}
	if st, ok := t.w.sshKeys[k]; ok && t.stage {
		return st, nil
	}
	var st string
	err := t.queryRow("SELECT state FROM ssh_authority_keys WHERE authority = ? AND fingerprint = ?", authority, fingerprint).Scan(&st)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", t.w.d.Error(err, "look up SSH key %s of %q", fingerprint, authority)
	}
	if t.stage {
		t.w.sshKeys[k] = st
	}
	return st, nil
}

// sshKeyCheck reads one key's state ("" if absent), refusing an authority
// that does not exist.
func (t *tx) sshKeyCheck(authority, fingerprint string) (state string, err error) {
	var exists bool
	err = t.queryRow(`SELECT EXISTS (SELECT 1 FROM authorities WHERE name = ?),
		COALESCE((SELECT state FROM ssh_authority_keys WHERE authority = ? AND fingerprint = ?), '')`,
		authority, authority, fingerprint).Scan(&exists, &state)
	if err != nil {
		return "", t.w.d.Error(err, "look up SSH key %s of %q", fingerprint, authority)
	}
	if err := store.CheckAuthorityExists(authority, exists); err != nil {
		return "", err
	}
	return state, nil
}

// AddSSHKey implements store.Store.
func (s *Store) AddSSHKey(ctx context.Context, k store.SSHKey, ev audit.Event) error {
	k, ev, err := store.PrepareAddSSHKey(k, ev, s.now)
	if err != nil {
		return err
	}
	check := func(t *tx) error {
		state, err := t.sshKeyCheck(k.Authority, k.Fingerprint)
		if err != nil {
			return err
		}
		return store.CheckAddSSHKey(k, state)
	}
	return s.w.do(ctx, check, func(t *tx) error {
		// The demoted key first: the new key's row refers to the event,
		// which records both.
		var changed []audit.Row
		if k.State == store.SSHKeyActive {
			var err error
			if changed, err = t.demoteSSHKey(k.Authority); err != nil {
				return err
			}
		}
		key := []any{k.Authority, k.Fingerprint, k.KeyURI, k.PublicKey, string(k.State), k.CreatedAt.UnixNano(), t.next()}
		state, err := planSSHKey.row(key)
		if err != nil {
			return err
		}
		if err := t.appendEvent(&ev, append(changed, state)...); err != nil {
			return err
		}
		_, err = t.exec(insertSSHKey, key...)
		return s.d.Error(err, "SSH key %s of %q", k.Fingerprint, k.Authority)
	})
}

// SetSSHKeyState implements store.Store.
func (s *Store) SetSSHKeyState(ctx context.Context, authority, fingerprint string, state store.SSHKeyState, ev audit.Event) error {
	ev, err := store.PrepareSetSSHKeyState(authority, fingerprint, state, ev)
	if err != nil {
		return err
	}
	check := func(t *tx) error {
		cur, err := t.sshKeyCheck(authority, fingerprint)
		if err != nil {
			return err
		}
		return store.CheckSetSSHKeyState(authority, fingerprint, cur, state)
	}
	return s.w.do(ctx, check, func(t *tx) error {
		var changed []audit.Row
		if state == store.SSHKeyActive {
			var err error
			if changed, err = t.demoteSSHKey(authority); err != nil {
				return err
			}
		}
		_, err := t.exec("UPDATE ssh_authority_keys SET state = ? WHERE authority = ? AND fingerprint = ?", string(state), authority, fingerprint)
		if err != nil {
			return s.d.Error(err, "set state of SSH key %s", fingerprint)
		}
		rows, err := t.state(&stateSSHKeys, "authority = ? AND fingerprint = ?", authority, fingerprint)
		if err != nil {
			return err
		}
		return t.appendEvent(&ev, append(changed, rows...)...)
	})
}

// RecordSSHCertificate implements store.Store.
func (s *Store) RecordSSHCertificate(ctx context.Context, c store.SSHCertificate, ev audit.Event) error {
	c, ev, err := store.PrepareRecordSSHCertificate(c, ev)
	if err != nil {
		return err
	}
	principals, err := columns.EncodePrincipals(c)
	if err != nil {
		return err
	}
	check := func(t *tx) error {
		state, err := t.sshKeyState(c.Authority, c.CAFingerprint)
		if err != nil {
			return err
		}
		var keyIDRevoked bool
		err = t.queryRow(`SELECT EXISTS (SELECT 1 FROM ssh_certificates WHERE authority = ? AND key_id = ? AND revoked_by = 'key-id')`,
			c.Authority, c.KeyID).Scan(&keyIDRevoked)
		if err != nil {
			return s.d.Error(err, "look up key ID %q", c.KeyID)
		}
		// A taken serial is refused by the UNIQUE constraint: when staged,
		// at the flush, which reruns the batch with a savepoint per request.
		return store.CheckRecordSSHCertificate(c, false, state, keyIDRevoked)
	}
	return s.w.doStaged(ctx, check, func(t *tx) error {
		row := []any{int64(c.Serial), c.Authority, c.CAFingerprint, c.KeyID, string(c.Type), principals,
			c.ValidAfter.UnixNano(), c.ValidBefore.UnixNano(), string(c.Status), columns.NullTime(c.RevokedAt), columns.NullString(c.RevokedBy),
			c.Requester, c.Cert, t.next()}
		state, err := planSSHCertificate.row(row)
		if err != nil {
			return err
		}
		if err := t.appendEvent(&ev, state); err != nil {
			return err
		}
		if t.stage {
			t.stageRow(stageSSHCertificates, row...)
			return nil
		}
		_, err = t.exec(insertSSHCertificate, row...)
		if err != nil && s.d.kind(err) == errs.Conflict {
			return errs.Wrap(errs.Conflict, failure{err}, "SSH certificate serial %d is already recorded", c.Serial)
		}
		return s.d.Error(err, "SSH certificate %d", c.Serial)
	})
}

// RevokeSSHCertificate implements store.Store.
func (s *Store) RevokeSSHCertificate(ctx context.Context, serial uint64, at time.Time, ev audit.Event) error {
	ev, err := store.PrepareRevokeSSHCertificate(serial, at, ev)
	if err != nil {
		return err
	}
	check := func(t *tx) error {
		var status, authority string
		err := t.queryRow("SELECT status, authority FROM ssh_certificates WHERE serial = ?", int64(serial)).Scan(&status, &authority)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return s.d.Error(err, "read SSH certificate %d", serial)
		}
		if err := store.CheckRevokeSSHCertificate(serial, status, authority, ev.Authority); err != nil {
			return err
		}
		ev.Authority = authority
		return nil
	}
	return s.w.do(ctx, check, func(t *tx) error {
		_, err := t.exec("UPDATE ssh_certificates SET status = 'revoked', revoked_at = ?, revoked_by = 'serial' WHERE serial = ?",
			at.UnixNano(), int64(serial))
		if err != nil {
			return s.d.Error(err, "revoke SSH certificate %d", serial)
		}
		rows, err := t.state(&stateSSHCertificates, "serial = ?", int64(serial))
		if err != nil {
			return err
		}
		return t.appendEvent(&ev, rows...)
	})
}

// RevokeSSHKeyID implements store.Store.
func (s *Store) RevokeSSHKeyID(ctx context.Context, authority, keyID string, at time.Time, ev audit.Event) (int, error) {
	ev, err := store.PrepareRevokeSSHKeyID(authority, keyID, at, ev)
	if err != nil {
		return 0, err
	}
	var n int
	check := func(t *tx) error {
		var total, open int
		err := t.queryRow(`SELECT COUNT(*), COUNT(*) FILTER (WHERE status = 'valid' OR revoked_by = 'serial')
			FROM ssh_certificates WHERE authority = ? AND key_id = ?`, authority, keyID).Scan(&total, &open)
		if err != nil {
			return s.d.Error(err, "look up key ID %q", keyID)
		}
		return store.CheckRevokeSSHKeyID(authority, keyID, total, open)
	}
	err = s.w.do(ctx, check, func(t *tx) error {
		res, err := t.exec(`UPDATE ssh_certificates SET status = 'revoked', revoked_at = ?, revoked_by = 'key-id'
			WHERE authority = ? AND key_id = ? AND (status = 'valid' OR revoked_by = 'serial')`, at.UnixNano(), authority, keyID)
		if err != nil {
			return s.d.Error(err, "revoke key ID %q", keyID)
		}
		affected, err := res.RowsAffected()
		if err != nil {
			return s.d.Error(err, "revoke key ID %q", keyID)
		}
		n = int(affected)
		rows, err := t.state(&stateSSHCertificates, "authority = ? AND key_id = ? AND revoked_by = 'key-id'", authority, keyID)
		if err != nil {
			return err
		}
		return t.appendEvent(&ev, rows...)
	})
	if err != nil {
		return 0, err // the writer may still run it: n is its until do succeeds
	}
	return n, nil
}

// SSHKeys implements store.Store.
func (s *Store) SSHKeys(ctx context.Context, authority string) ([]store.SSHKey, error) {
	return rows(ctx, s, columns.ScanSSHKey,
		"SELECT "+columns.SSHKeyColumns+" FROM ssh_authority_keys WHERE authority = ? ORDER BY created_at, fingerprint"+s.d.Bytewise, authority)
}

// SSHCertificate implements store.Store.
func (s *Store) SSHCertificate(ctx context.Context, serial uint64) (store.SSHCertificate, error) {
	if err := store.CheckSSHSerial(serial); err != nil {
		return store.SSHCertificate{}, errs.Wrap(errs.NotFound, err, "SSH certificate %d not found", serial)
	}
	return row(ctx, s, func() error { return errs.New(errs.NotFound, "SSH certificate %d not found", serial) }, columns.ScanSSHCertificate,
		"SELECT "+columns.SSHCertificateColumns+" FROM ssh_certificates WHERE serial = ?", int64(serial))
}

// SSHCertificates implements store.Store.
func (s *Store) SSHCertificates(ctx context.Context, f store.SSHFilter) ([]store.SSHCertificate, error) {
	var where []string
	var args []any
	if f.Authority != "" {
		where, args = append(where, "authority = ?"), append(args, f.Authority)
	}
	if f.KeyID != "" {
		where, args = append(where, "key_id = ?"), append(args, f.KeyID)
	}
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, string(f.Status))
	}
	if f.Principal != "" {
		// principals is a JSON array of strings: the principal, encoded
		// the same way and quoted, is one of its elements.
		p, err := json.Marshal(f.Principal)
		if err != nil {
			return nil, errs.Wrap(errs.Internal, err, "encode principal")
		}
		where, args = append(where, `principals LIKE ? ESCAPE '\'`), append(args, "%"+likeEscaper.Replace(string(p))+"%")
	}
	if f.AfterSerial > 0 {
		where, args = append(where, "serial > ?"), append(args, int64(min(f.AfterSerial, math.MaxInt64)))
	}
	q, args := listing("SELECT "+columns.SSHCertificateColumns+" FROM ssh_certificates", where, "serial", f.Limit, args)
	return rows(ctx, s, columns.ScanSSHCertificate, q, args...)
}
