package home

import (
	"context"
	"fmt"
	"slices"

	"signet/internal/errs"
	"signet/internal/store"
)

// ChangeAuthority changes an authority's settings (ca.CA.ChangeAuthority),
// refusing what this home's configuration forbids: ACME for the admin
// authority, and turning EAB off for an authority signet.toml's
// [acme] require_eab still lists.
func (h *Home) ChangeAuthority(ctx context.Context, name string, ch store.AuthorityChange, actor string) (store.Authority, bool, error) {
	if ch.ACME != nil && *ch.ACME {
		if err := h.CheckACME(name); err != nil {
			return store.Authority{}, false, err
		}
	}
	if ch.RequireEAB != nil && !*ch.RequireEAB && slices.Contains(h.Config.ACME.RequireEAB, name) {
		return store.Authority{}, false, errs.New(errs.Rejected,
			"signet.toml's [acme] require_eab lists %q: remove it there first, then turn EAB off", name)
	}
	return h.CA.ChangeAuthority(ctx, name, ch, actor)
}

// CheckACME refuses ACME for the home's admin authority: any certificate
// it issues is an administrator, and ACME issues to whoever controls a name.
func (h *Home) CheckACME(name string) error {
	if name != "" && name == h.Config.Server.AdminAuthority {
		return errs.New(errs.Rejected,
			"authority %q is the admin authority (signet.toml admin_authority): its certificates are administrators, so it never serves ACME", name)
	}
	return nil
}

// settleACME brings the store in line with the configuration when a home
// is opened, and says what it changed: the admin authority loses ACME
// (homes made before ACME was a setting served it for every authority),
// and the authorities listed in signet.toml's [acme] require_eab, where
// that setting lived before, require EAB in the store. Both are audited.
func (h *Home) settleACME(ctx context.Context) ([]string, error) {
	const actor = "signet.toml"
	var notices []string
	off, on := false, true
	if admin := h.Config.Server.AdminAuthority; admin != "" {
		_, changed, err := h.CA.ChangeAuthority(ctx, admin, store.AuthorityChange{ACME: &off}, actor)
		if err != nil && errs.KindOf(err) != errs.NotFound { // serve names an unknown admin authority itself
			return nil, err
		}
		if changed {
			notices = append(notices, fmt.Sprintf("turned ACME off for authority %q: it is the admin authority, whose certificates are administrators", admin))
		}
	}
	for _, name := range h.Config.ACME.RequireEAB {
		_, changed, err := h.CA.ChangeAuthority(ctx, name, store.AuthorityChange{RequireEAB: &on}, actor)
		if k := errs.KindOf(err); err != nil && k != errs.NotFound && k != errs.Rejected { // a name that never served ACME
			return nil, err
		}
		if changed {
			notices = append(notices, fmt.Sprintf("authority %q now requires EAB, as signet.toml's [acme] require_eab asks; that setting is now 'signet authority set %s --require-eab=true'", name, name))
		}
	}
	return notices, nil
}
