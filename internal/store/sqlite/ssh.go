package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
	"signet/internal/store/columns"
)

func init() {
	for name, q := range map[string]string{
		"sshKey": `INSERT INTO ssh_authority_keys (authority, fingerprint, key_uri, public_key, state, created_at, event_seq)
			VALUES (?, ?, ?, ?, ?, ?, ?)`,
		"sshKeyCheck": `SELECT EXISTS (SELECT 1 FROM authorities WHERE name = ?),
			(SELECT state FROM ssh_authority_keys WHERE authority = ? AND fingerprint = ?)`,
		"sshDemote":   "UPDATE ssh_authority_keys SET state = 'trusted' WHERE authority = ? AND state = 'active'",
		"sshKeyState": "UPDATE ssh_authority_keys SET state = ? WHERE authority = ? AND fingerprint = ?",
		"sshKeyOf":    "SELECT state FROM ssh_authority_keys WHERE authority = ? AND fingerprint = ?",
		"sshKeyIDRevoked": `SELECT EXISTS (SELECT 1 FROM ssh_certificates
			WHERE authority = ? AND key_id = ? AND revoked_by = 'key-id')`,
		"sshCertState": "SELECT status, authority FROM ssh_certificates WHERE serial = ?",
		"sshRevoke":    "UPDATE ssh_certificates SET status = 'revoked', revoked_at = ?, revoked_by = 'serial' WHERE serial = ?",
		"sshKeyIDCount": `SELECT COUNT(*), COALESCE(SUM(status = 'valid' OR revoked_by = 'serial'), 0)
			FROM ssh_certificates WHERE authority = ? AND key_id = ?`,
		"sshRevokeKeyID": `UPDATE ssh_certificates SET status = 'revoked', revoked_at = ?, revoked_by = 'key-id'
			WHERE authority = ? AND key_id = ? AND (status = 'valid' OR revoked_by = 'serial')`,
	} {
		writeStatements[name] = q
	}
}

// CreateSSHAuthority implements store.Store.
func (s *Store) CreateSSHAuthority(ctx context.Context, a store.Authority, k store.SSHKey, ev audit.Event) error {
	a, k, ev, err := store.PrepareCreateSSHAuthority(a, k, ev, s.now)
	if err != nil {
		return err
	}
	check := func(t *tx) error { return t.checkNewAuthority(a) }
	return s.w.do(ctx, check, func(t *tx) error {
		if err := t.insertAuthority(a, &ev); err != nil {
			return err
		}
		_, err := t.exec("sshKey", k.Authority, k.Fingerprint, k.KeyURI, k.PublicKey, string(k.State), k.CreatedAt.UnixNano(), ev.Seq)
		return constraintError(err, "SSH key %s of %q", k.Fingerprint, k.Authority)
	})
}

// sshKeyState reads the state of an authority's SSH CA key ("" if it has
// no such key). While only staging requests run, a batch reads it once.
func (t *tx) sshKeyState(authority, fingerprint string) (string, error) {
	k := [2]string{authority, fingerprint}
	if st, ok := t.w.sshKeys[k]; ok && t.stage {
		return st, nil
	}
	var st sql.NullString
	err := t.w.stmt["sshKeyOf"].QueryRowContext(t.ctx, authority, fingerprint).Scan(&st)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", errs.Wrap(errs.Internal, err, "look up SSH key %s of %q", fingerprint, authority)
	}
	if t.stage {
		t.w.sshKeys[k] = st.String
	}
	return st.String, nil
}

// sshKeyCheck reads one key's state ("" if absent), refusing an authority
// that does not exist.
func (t *tx) sshKeyCheck(authority, fingerprint string) (state string, err error) {
	var exists bool
	var st sql.NullString
	err = t.w.stmt["sshKeyCheck"].QueryRowContext(t.ctx, authority, authority, fingerprint).Scan(&exists, &st)
	if err != nil {
		return "", errs.Wrap(errs.Internal, err, "look up SSH key %s of %q", fingerprint, authority)
	}
	if err := store.CheckAuthorityExists(authority, exists); err != nil {
		return "", err
	}
	return st.String, nil
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
		if err := t.appendEvent(&ev); err != nil {
			return err
		}
		if k.State == store.SSHKeyActive {
			if _, err := t.exec("sshDemote", k.Authority); err != nil {
				return errs.Wrap(errs.Internal, err, "demote the active key of %q", k.Authority)
			}
		}
		_, err := t.exec("sshKey", k.Authority, k.Fingerprint, k.KeyURI, k.PublicKey, string(k.State), k.CreatedAt.UnixNano(), ev.Seq)
		return constraintError(err, "SSH key %s of %q", k.Fingerprint, k.Authority)
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
		if err := t.appendEvent(&ev); err != nil {
			return err
		}
		if state == store.SSHKeyActive {
			if _, err := t.exec("sshDemote", authority); err != nil {
				return errs.Wrap(errs.Internal, err, "demote the active key of %q", authority)
			}
		}
		if _, err := t.exec("sshKeyState", string(state), authority, fingerprint); err != nil {
			return errs.Wrap(errs.Internal, err, "set state of SSH key %s", fingerprint)
		}
		return nil
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
		if err := t.w.stmt["sshKeyIDRevoked"].QueryRowContext(t.ctx, c.Authority, c.KeyID).Scan(&keyIDRevoked); err != nil {
			return errs.Wrap(errs.Internal, err, "look up key ID %q", c.KeyID)
		}
		// A taken serial is refused by the UNIQUE constraint: when staged,
		// at the flush, which reruns the batch with a savepoint per request.
		return store.CheckRecordSSHCertificate(c, false, state, keyIDRevoked)
	}
	return s.w.doStaged(ctx, check, func(t *tx) error {
		if err := t.appendEvent(&ev); err != nil {
			return err
		}
		row := []any{int64(c.Serial), c.Authority, c.CAFingerprint, c.KeyID, string(c.Type), principals,
			c.ValidAfter.UnixNano(), c.ValidBefore.UnixNano(), string(c.Status), columns.NullTime(c.RevokedAt), columns.NullString(c.RevokedBy),
			c.Requester, c.Cert, ev.Seq}
		if t.stage {
			t.stageRow(stageSSHCertificates, row...)
			return nil
		}
		_, err := t.exec("sshCert", row...)
		if constraint(err) == sqlite3.SQLITE_CONSTRAINT_UNIQUE {
			return errs.Wrap(errs.Conflict, err, "SSH certificate serial %d is already recorded", c.Serial)
		}
		return constraintError(err, "SSH certificate %d", c.Serial)
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
		err := t.w.stmt["sshCertState"].QueryRowContext(t.ctx, int64(serial)).Scan(&status, &authority)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return errs.Wrap(errs.Internal, err, "read SSH certificate %d", serial)
		}
		if err := store.CheckRevokeSSHCertificate(serial, status, authority, ev.Authority); err != nil {
			return err
		}
		ev.Authority = authority
		return nil
	}
	return s.w.do(ctx, check, func(t *tx) error {
		if err := t.appendEvent(&ev); err != nil {
			return err
		}
		if _, err := t.exec("sshRevoke", at.UnixNano(), int64(serial)); err != nil {
			return errs.Wrap(errs.Internal, err, "revoke SSH certificate %d", serial)
		}
		return nil
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
		if err := t.w.stmt["sshKeyIDCount"].QueryRowContext(t.ctx, authority, keyID).Scan(&total, &open); err != nil {
			return errs.Wrap(errs.Internal, err, "look up key ID %q", keyID)
		}
		return store.CheckRevokeSSHKeyID(authority, keyID, total, open)
	}
	err = s.w.do(ctx, check, func(t *tx) error {
		if err := t.appendEvent(&ev); err != nil {
			return err
		}
		res, err := t.exec("sshRevokeKeyID", at.UnixNano(), authority, keyID)
		if err != nil {
			return errs.Wrap(errs.Internal, err, "revoke key ID %q", keyID)
		}
		rows, _ := res.RowsAffected()
		n = int(rows)
		return nil
	})
	return n, err
}

// SSHKeys implements store.Store.
func (s *Store) SSHKeys(ctx context.Context, authority string) ([]store.SSHKey, error) {
	var out []store.SSHKey
	err := s.each(ctx, "SELECT "+columns.SSHKeyColumns+" FROM ssh_authority_keys WHERE authority = ? ORDER BY created_at, fingerprint",
		[]any{authority}, func(rows *sql.Rows) error {
			k, err := columns.ScanSSHKey(rows.Scan)
			out = append(out, k)
			return err
		})
	return out, err
}

// SSHCertificate implements store.Store.
func (s *Store) SSHCertificate(ctx context.Context, serial uint64) (store.SSHCertificate, error) {
	if err := store.CheckSSHSerial(serial); err != nil {
		return store.SSHCertificate{}, errs.Wrap(errs.NotFound, err, "SSH certificate %d not found", serial)
	}
	cs, err := s.sshCertificates(ctx, "SELECT "+columns.SSHCertificateColumns+" FROM ssh_certificates WHERE serial = ?", int64(serial))
	if err == nil && len(cs) == 0 {
		err = errs.New(errs.NotFound, "SSH certificate %d not found", serial)
	}
	if err != nil {
		return store.SSHCertificate{}, err
	}
	return cs[0], nil
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
	q := "SELECT " + columns.SSHCertificateColumns + " FROM ssh_certificates"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY serial"
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	return s.sshCertificates(ctx, q, args...)
}

func (s *Store) sshCertificates(ctx context.Context, q string, args ...any) ([]store.SSHCertificate, error) {
	var out []store.SSHCertificate
	err := s.each(ctx, q, args, func(rows *sql.Rows) error {
		c, err := columns.ScanSSHCertificate(rows.Scan)
		out = append(out, c)
		return err
	})
	return out, err
}
