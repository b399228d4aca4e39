package postgres

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
	"signet/internal/store/columns"
)

const (
	sshKeyInsert = `INSERT INTO ssh_authority_keys (authority, fingerprint, key_uri, public_key, state, created_at, event_seq)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`
	sshDemote = "UPDATE ssh_authority_keys SET state = 'trusted' WHERE authority = $1 AND state = 'active'"
)

// CreateSSHAuthority implements store.Store.
func (s *Store) CreateSSHAuthority(ctx context.Context, a store.Authority, k store.SSHKey, ev audit.Event) error {
	a, k, ev, err := store.PrepareCreateSSHAuthority(a, k, ev, s.now)
	if err != nil {
		return err
	}
	return s.w.do(ctx, checkNewAuthority(a), func(t *tx) error {
		if err := t.appendEvent(&ev); err != nil {
			return err
		}
		if err := t.insertAuthority(a, ev.Seq); err != nil {
			return err
		}
		_, err = t.exec(sshKeyInsert, k.Authority, k.Fingerprint, k.KeyURI, k.PublicKey, string(k.State), k.CreatedAt.UnixNano(), ev.Seq)
		return dbError(err, "SSH key %s of %q", k.Fingerprint, k.Authority)
	})
}

// sshKeyCheck reads one key's state ("" if absent), refusing an authority
// that does not exist.
func (t *tx) sshKeyCheck(authority, fingerprint string) (state string, err error) {
	var exists bool
	err = t.tx.QueryRow(t.ctx, `SELECT EXISTS (SELECT 1 FROM authorities WHERE name = $1),
		COALESCE((SELECT state FROM ssh_authority_keys WHERE authority = $1 AND fingerprint = $2), '')`,
		authority, fingerprint).Scan(&exists, &state)
	if err != nil {
		return "", dbError(err, "look up SSH key %s of %q", fingerprint, authority)
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
		if err := t.appendEvent(&ev); err != nil {
			return err
		}
		if k.State == store.SSHKeyActive {
			if _, err := t.exec(sshDemote, k.Authority); err != nil {
				return dbError(err, "demote the active key of %q", k.Authority)
			}
		}
		_, err := t.exec(sshKeyInsert, k.Authority, k.Fingerprint, k.KeyURI, k.PublicKey, string(k.State), k.CreatedAt.UnixNano(), ev.Seq)
		return dbError(err, "SSH key %s of %q", k.Fingerprint, k.Authority)
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
			if _, err := t.exec(sshDemote, authority); err != nil {
				return dbError(err, "demote the active key of %q", authority)
			}
		}
		_, err := t.exec("UPDATE ssh_authority_keys SET state = $1 WHERE authority = $2 AND fingerprint = $3", string(state), authority, fingerprint)
		return dbError(err, "set state of SSH key %s", fingerprint)
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
		var taken, keyIDRevoked bool
		var state string
		err := t.tx.QueryRow(t.ctx, `SELECT EXISTS (SELECT 1 FROM ssh_certificates WHERE serial = $1),
			COALESCE((SELECT state FROM ssh_authority_keys WHERE authority = $2 AND fingerprint = $3), ''),
			EXISTS (SELECT 1 FROM ssh_certificates WHERE authority = $2 AND key_id = $4 AND revoked_by = 'key-id')`,
			int64(c.Serial), c.Authority, c.CAFingerprint, c.KeyID).Scan(&taken, &state, &keyIDRevoked)
		if err != nil {
			return dbError(err, "look up SSH certificate %d", c.Serial)
		}
		return store.CheckRecordSSHCertificate(c, taken, state, keyIDRevoked)
	}
	return s.w.do(ctx, check, func(t *tx) error {
		if err := t.appendEvent(&ev); err != nil {
			return err
		}
		_, err := t.exec(`INSERT INTO ssh_certificates (serial, authority, ca_fingerprint, key_id, type, principals,
			valid_after, valid_before, status, revoked_at, revoked_by, requester, cert, issue_seq)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
			int64(c.Serial), c.Authority, c.CAFingerprint, c.KeyID, string(c.Type), principals,
			c.ValidAfter.UnixNano(), c.ValidBefore.UnixNano(), string(c.Status), columns.NullTime(c.RevokedAt), columns.NullString(c.RevokedBy),
			c.Requester, c.Cert, ev.Seq)
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23505" {
			return errs.Wrap(errs.Conflict, err, "SSH certificate serial %d is already recorded", c.Serial)
		}
		return dbError(err, "SSH certificate %d", c.Serial)
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
		err := t.tx.QueryRow(t.ctx, "SELECT status, authority FROM ssh_certificates WHERE serial = $1", int64(serial)).Scan(&status, &authority)
		if err != nil && !isNoRows(err) {
			return dbError(err, "read SSH certificate %d", serial)
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
		_, err := t.exec("UPDATE ssh_certificates SET status = 'revoked', revoked_at = $1, revoked_by = 'serial' WHERE serial = $2",
			at.UnixNano(), int64(serial))
		return dbError(err, "revoke SSH certificate %d", serial)
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
		err := t.tx.QueryRow(t.ctx, `SELECT COUNT(*), COUNT(*) FILTER (WHERE status = 'valid' OR revoked_by = 'serial')
			FROM ssh_certificates WHERE authority = $1 AND key_id = $2`, authority, keyID).Scan(&total, &open)
		if err != nil {
			return dbError(err, "look up key ID %q", keyID)
		}
		return store.CheckRevokeSSHKeyID(authority, keyID, total, open)
	}
	err = s.w.do(ctx, check, func(t *tx) error {
		if err := t.appendEvent(&ev); err != nil {
			return err
		}
		tag, err := t.exec(`UPDATE ssh_certificates SET status = 'revoked', revoked_at = $1, revoked_by = 'key-id'
			WHERE authority = $2 AND key_id = $3 AND (status = 'valid' OR revoked_by = 'serial')`, at.UnixNano(), authority, keyID)
		if err != nil {
			return dbError(err, "revoke key ID %q", keyID)
		}
		n = int(tag.RowsAffected())
		return nil
	})
	return n, err
}

// SSHKeys implements store.Store.
func (s *Store) SSHKeys(ctx context.Context, authority string) ([]store.SSHKey, error) {
	var out []store.SSHKey
	err := s.each(ctx, false, "SELECT "+columns.SSHKeyColumns+` FROM ssh_authority_keys WHERE authority = $1 ORDER BY created_at, fingerprint COLLATE "C"`,
		[]any{authority}, func(rows pgx.Rows) error {
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
	cs, err := s.sshCertificates(ctx, "SELECT "+columns.SSHCertificateColumns+" FROM ssh_certificates WHERE serial = $1", int64(serial))
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
	add := func(cond string, arg any) {
		args = append(args, arg)
		where = append(where, cond+" = $"+strconv.Itoa(len(args)))
	}
	if f.Authority != "" {
		add("authority", f.Authority)
	}
	if f.KeyID != "" {
		add("key_id", f.KeyID)
	}
	if f.Status != "" {
		add("status", string(f.Status))
	}
	q := "SELECT " + columns.SSHCertificateColumns + " FROM ssh_certificates"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY serial"
	if f.Limit > 0 {
		args = append(args, f.Limit)
		q += " LIMIT $" + strconv.Itoa(len(args))
	}
	return s.sshCertificates(ctx, q, args...)
}

func (s *Store) sshCertificates(ctx context.Context, q string, args ...any) ([]store.SSHCertificate, error) {
	var out []store.SSHCertificate
	err := s.each(ctx, false, q, args, func(rows pgx.Rows) error {
		c, err := columns.ScanSSHCertificate(rows.Scan)
		out = append(out, c)
		return err
	})
	return out, err
}
