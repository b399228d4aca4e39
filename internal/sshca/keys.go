package sshca

import (
	"context"
	"strings"

	"golang.org/x/crypto/ssh"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/policy"
	"signet/internal/profile"
	"signet/internal/store"
)

// AddKey adds the key at uri to an SSH authority: trusted, or active (the
// signer, the previous signer staying trusted) when activate is set.
// Publish a new key first and activate it once the trust lines are
// installed everywhere, so no certificate is refused during a rollover.
func (c *CA) AddKey(ctx context.Context, authority, uri string, activate bool, actor string) (store.SSHKey, error) {
	if _, err := c.sshAuthority(ctx, authority); err != nil {
		return store.SSHKey{}, err
	}
	signer, err := c.keys.Signer(ctx, uri)
	if err != nil {
		return store.SSHKey{}, err
	}
	k, err := KeyRecord(uri, signer)
	if err != nil {
		return store.SSHKey{}, err
	}
	k.Authority, k.State, k.CreatedAt = authority, store.SSHKeyTrusted, c.now().UTC()
	if activate {
		k.State = store.SSHKeyActive
	}
	ev := c.event(audit.Event{Kind: audit.KindSSHKeyAdd, Actor: actor, Authority: authority, Subject: k.Fingerprint}, map[string]any{"key": uri, "state": k.State, "public_key": k.PublicKey})
	err = c.store.AddSSHKey(ctx, k, ev)
	c.forget(authority)
	return k, err
}

// SetKeyState moves a CA key (named by its SHA256 fingerprint, with or
// without the "SHA256:" prefix) to state. The active key cannot be retired
// or merely trusted: activate another first. It can be revoked, which
// leaves the authority unable to sign until another key is activated.
func (c *CA) SetKeyState(ctx context.Context, authority, fingerprint string, state store.SSHKeyState, actor string) (store.SSHKey, error) {
	if err := store.CheckSSHKeyState(state); err != nil {
		return store.SSHKey{}, err
	}
	k, err := c.key(ctx, authority, fingerprint)
	if err != nil {
		return store.SSHKey{}, err
	}
	if k.State == store.SSHKeyActive && (state == store.SSHKeyRetired || state == store.SSHKeyTrusted) {
		return k, errs.New(errs.Conflict, "key %s signs for %q: activate another key first ('signet ssh key add --activate' or 'signet ssh key activate')", k.Fingerprint, authority)
	}
	ev := c.event(audit.Event{Kind: audit.KindSSHKeyState, Actor: actor, Authority: authority, Subject: k.Fingerprint}, map[string]any{"from": k.State, "to": state, "key": k.KeyURI})
	if err := c.store.SetSSHKeyState(ctx, authority, k.Fingerprint, state, ev); err != nil {
		return k, err
	}
	c.forget(authority)
	k.State = state
	return k, nil
}

// Keys lists an SSH authority's CA keys, oldest first.
func (c *CA) Keys(ctx context.Context, authority string) ([]store.SSHKey, error) {
	if _, err := c.sshAuthority(ctx, authority); err != nil {
		return nil, err
	}
	return c.store.SSHKeys(ctx, authority)
}

func (c *CA) key(ctx context.Context, authority, fingerprint string) (store.SSHKey, error) {
	keys, err := c.Keys(ctx, authority)
	if err != nil {
		return store.SSHKey{}, err
	}
	fp := fingerprint
	if !strings.HasPrefix(fp, "SHA256:") {
		fp = "SHA256:" + fp
	}
	for _, k := range keys {
		if k.Fingerprint == fp {
			return k, nil
		}
	}
	return store.SSHKey{}, errs.New(errs.NotFound, "authority %q has no key %s: 'signet ssh key list --authority %s' shows its keys", authority, fingerprint, authority)
}

// sshAuthority reads an authority and refuses one that is not SSH.
func (c *CA) sshAuthority(ctx context.Context, name string) (store.Authority, error) {
	a, err := c.store.Authority(ctx, name)
	if err != nil {
		return a, err
	}
	if !profile.Purpose(a.Purpose).IsSSH() {
		return a, errs.New(errs.Rejected, "authority %q has purpose %s and issues X.509 certificates; name an ssh-host or ssh-user authority", name, a.Purpose)
	}
	return a, nil
}

// trusted says whether a key belongs in the trust lines.
func trusted(s store.SSHKeyState) bool { return s == store.SSHKeyActive || s == store.SSHKeyTrusted }

// Trust returns exactly what to install for an authority, one line per
// active or trusted key: "@cert-authority PATTERN KEY" lines for
// known_hosts (host authority), or the keys for sshd's TrustedUserCAKeys
// file (user authority). pattern "" is the authority's principal policy as
// a known_hosts pattern list ("*" if it permits any name); a pattern given
// must pass CheckHostPattern.
func (c *CA) Trust(ctx context.Context, authority, pattern string) (string, error) {
	if pattern != "" {
		if err := CheckHostPattern(pattern); err != nil {
			return "", err
		}
	}
	a, err := c.sshAuthority(ctx, authority)
	if err != nil {
		return "", err
	}
	keys, err := c.store.SSHKeys(ctx, authority)
	if err != nil {
		return "", err
	}
	host := a.Purpose == string(profile.SSHHost)
	if host && pattern == "" {
		pattern = hostPattern(a)
	}
	var b strings.Builder
	for _, k := range keys {
		if !trusted(k.State) {
			continue
		}
		if host {
			b.WriteString("@cert-authority " + pattern + " ")
		}
		b.WriteString(k.PublicKey + " signet:" + authority + "\n")
	}
	if b.Len() == 0 {
		return "", errs.New(errs.Conflict, "authority %q has no trusted key", authority)
	}
	return b.String(), nil
}

func hostPattern(a store.Authority) string {
	p, err := policy.Parse(a.Policy)
	if err != nil || len(p.Principals) == 0 {
		return "*"
	}
	for _, n := range p.Principals {
		if n == policy.Any {
			return "*"
		}
	}
	return strings.Join(p.Principals, ",")
}

// PublicKeyOf parses a stored authorized_keys line.
func PublicKeyOf(k store.SSHKey) (ssh.PublicKey, error) {
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(k.PublicKey))
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "stored SSH key %s", k.Fingerprint)
	}
	return pub, nil
}
