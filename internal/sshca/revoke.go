package sshca

import (
	"context"
	"slices"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
)

// Revoke revokes one SSH certificate of an authority by serial. The
// authority's KRL lists it from then on.
func (c *CA) Revoke(ctx context.Context, authority string, serial uint64, actor string) error {
	if _, err := c.sshAuthority(ctx, authority); err != nil {
		return err
	}
	ev := c.event(audit.Event{Kind: audit.KindSSHCertificateRevoke, Actor: actor, Authority: authority, Subject: store.SSHSubject(serial)}, map[string]any{"by": store.RevokedBySerial})
	return c.store.RevokeSSHCertificate(ctx, serial, c.now().UTC(), ev)
}

// RevokeKeyID revokes every certificate of an authority with that key ID;
// the KRL lists the key ID, so certificates with it are refused however
// they were issued, and the authority issues none with it from then on.
// It returns how many recorded certificates it revoked.
func (c *CA) RevokeKeyID(ctx context.Context, authority, keyID, actor string) (int, error) {
	if _, err := c.sshAuthority(ctx, authority); err != nil {
		return 0, err
	}
	ev := c.event(audit.Event{Kind: audit.KindSSHCertificateRevoke, Actor: actor, Authority: authority, Subject: "ssh-key-id:" + keyID}, map[string]any{"by": store.RevokedByKeyID, "key_id": keyID})
	return c.store.RevokeSSHKeyID(ctx, authority, keyID, c.now().UTC(), ev)
}

// KRL returns the authority's OpenSSH key revocation list: for each CA key,
// the serials and key IDs it revoked, and every revoked CA key itself.
// Its version is its generation time in seconds, which only grows.
func (c *CA) KRL(ctx context.Context, authority string) ([]byte, error) {
	if _, err := c.sshAuthority(ctx, authority); err != nil {
		return nil, err
	}
	keys, err := c.store.SSHKeys(ctx, authority)
	if err != nil {
		return nil, err
	}
	revoked, err := c.store.SSHCertificates(ctx, store.SSHFilter{Authority: authority, Status: store.Revoked})
	if err != nil {
		return nil, err
	}
	now := c.now().UTC()
	k := KRL{Version: uint64(now.Unix()), Generated: now, Comment: "signet " + authority}
	byCA := map[string]*KRLCertificates{}
	for _, key := range keys {
		pub, err := PublicKeyOf(key)
		if err != nil {
			return nil, err
		}
		if key.State == store.SSHKeyRevoked {
			k.Keys = append(k.Keys, pub)
		}
		byCA[key.Fingerprint] = &KRLCertificates{CA: pub}
	}
	for _, cert := range revoked {
		sec := byCA[cert.CAFingerprint]
		if sec == nil {
			return nil, errs.New(errs.Internal, "SSH certificate %d names CA key %s, which %q does not hold", cert.Serial, cert.CAFingerprint, authority)
		}
		if cert.RevokedBy == store.RevokedByKeyID {
			if !slices.Contains(sec.KeyIDs, cert.KeyID) {
				sec.KeyIDs = append(sec.KeyIDs, cert.KeyID)
			}
		}
		sec.Serials = append(sec.Serials, cert.Serial)
	}
	for _, key := range keys {
		if sec := byCA[key.Fingerprint]; len(sec.Serials)+len(sec.KeyIDs) > 0 {
			k.Certificates = append(k.Certificates, *sec)
		}
	}
	return k.Marshal(), nil
}
