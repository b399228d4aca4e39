package ca

import (
	"context"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/profile"
	"signet/internal/store"
)

// ChangeAuthority changes an authority's settings with an authority.update
// event naming what changed. Settings already as asked are left out of the
// change; when nothing is left it writes nothing and reports changed false.
// It returns the authority as it is afterwards. ACME is refused for the
// root and SSH authorities, which do not issue X.509 leaves; whether an
// authority may serve ACME at all (the admin authority may not) is the
// caller's to decide, as it depends on the node's configuration.
func (c *CA) ChangeAuthority(ctx context.Context, name string, ch store.AuthorityChange, actor string) (rec store.Authority, changed bool, err error) {
	if ch.Empty() {
		return rec, false, errs.New(errs.Malformed, "no change given for authority %q", name)
	}
	if rec, err = c.store.Authority(ctx, name); err != nil {
		return rec, false, err
	}
	data := map[string]bool{}
	if ch.ACME != nil && *ch.ACME != rec.ACME {
		data["acme"], rec.ACME = *ch.ACME, *ch.ACME
	} else {
		ch.ACME = nil
	}
	if ch.RequireEAB != nil && *ch.RequireEAB != rec.RequireEAB {
		data["require_eab"], rec.RequireEAB = *ch.RequireEAB, *ch.RequireEAB
	} else {
		ch.RequireEAB = nil
	}
	if ch.Enabled != nil && *ch.Enabled == rec.Disabled {
		data["enabled"], rec.Disabled = *ch.Enabled, !*ch.Enabled
	} else {
		ch.Enabled = nil
	}
	if ch.Empty() {
		return rec, false, nil
	}
	if rec.ACME || rec.RequireEAB {
		switch {
		case rec.Purpose == RootPurpose:
			return rec, false, errs.New(errs.Rejected, "the root issues no leaves: ACME is served by issuing authorities only")
		case profile.Purpose(rec.Purpose).IsSSH():
			return rec, false, errACMESSH(name)
		}
	}
	ev := c.event(audit.Event{Kind: audit.KindAuthorityUpdate, Actor: actor, Authority: name, Subject: name}, data)
	if err := c.store.ChangeAuthority(ctx, name, ch, ev); err != nil {
		return rec, false, err
	}
	c.disabled.Delete(name) // this process sees its own change at once
	return rec, true, nil
}

func errACMESSH(name string) error {
	return errs.New(errs.Rejected, "authority %q issues SSH certificates: ACME serves X.509 authorities only", name)
}
