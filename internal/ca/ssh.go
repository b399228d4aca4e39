package ca

import (
	"context"
	"encoding/json"
	"time"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/sshca"
	"signet/internal/store"
)

// createSSHAuthority is CreateAuthority's branch for ssh-host and ssh-user:
// no X.509 certificate and no parent, just the policy, the validity limits
// and the first CA key (active), recorded together. sshca signs for it.
func (c *CA) createSSHAuthority(ctx context.Context, spec AuthoritySpec, leafDefault, leafMax time.Duration) (store.Authority, error) {
	p := spec.Policy
	if len(p.DNS)+len(p.IP)+len(p.Email) > 0 || p.Wildcards {
		return store.Authority{}, errs.New(errs.Malformed, "SSH authorities certify principals only: give --allow-principal, not DNS, IP or email names")
	}
	if len(p.Principals) == 0 {
		return store.Authority{}, errs.New(errs.Malformed, "give the principals the SSH authority may certify (--allow-principal NAME, '*' for any)")
	}
	signer, err := c.keys.Signer(ctx, spec.KeyURI)
	if err != nil {
		return store.Authority{}, err
	}
	key, err := sshca.KeyRecord(spec.KeyURI, signer)
	if err != nil {
		return store.Authority{}, err
	}
	pol, err := json.Marshal(p)
	if err != nil {
		return store.Authority{}, errs.Wrap(errs.Internal, err, "policy")
	}
	now := c.now().UTC().Truncate(time.Second)
	rec := store.Authority{
		Name: spec.Name, Purpose: string(spec.Purpose), KeyURI: spec.KeyURI, Policy: pol,
		DefaultValidity: leafDefault, MaxValidity: leafMax, CreatedAt: now,
	}
	key.Authority, key.State, key.CreatedAt = spec.Name, store.SSHKeyActive, now
	ev := c.event(audit.Event{Kind: audit.KindAuthorityCreate, Actor: spec.Actor, Authority: spec.Name, Subject: spec.Name}, map[string]any{
		"purpose": spec.Purpose, "key": spec.KeyURI, "policy": json.RawMessage(pol),
		"default_validity": leafDefault.String(), "max_validity": leafMax.String(),
		"ssh_key": key.Fingerprint, "public_key": key.PublicKey,
	})
	return rec, c.store.CreateSSHAuthority(ctx, rec, key, ev)
}
