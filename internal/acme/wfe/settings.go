package wfe

import (
	"context"
	"fmt"
	"sync"
	"time"

	"signet/internal/errs"
)

// settingsTTL bounds how stale an authority's ACME settings may be on
// this node: a change made by the CLI or another node sharing the store
// (ACME or EAB turned on or off) takes effect here within settingsTTL.
// Every request needs them; reading the store each time would add a read
// to every ACME request.
const settingsTTL = time.Second

// settings is what may change of an authority while it is served: its
// store.Authority's ACME and RequireEAB.
type settings struct {
	acme, requireEAB bool
	read             time.Time // monotonic: staleness is real time, not the injected clock
}

// settingsCache holds each authority's settings as last read. Authorities
// are few (the operator makes them), so it needs no bound.
type settingsCache struct{ m sync.Map } // name → settings

// settingsOf returns an authority's settings, from the cache while fresh.
func (w *WFE) settingsOf(ctx context.Context, name string) (settings, error) {
	if v, ok := w.settings.m.Load(name); ok && time.Since(v.(settings).read) < settingsTTL {
		return v.(settings), nil
	}
	start := time.Now()
	rec, err := w.store.Authority(ctx, name)
	if err != nil {
		return settings{}, err
	}
	s := settings{acme: rec.ACME, requireEAB: rec.RequireEAB, read: start}
	w.settings.m.Store(name, s)
	return s, nil
}

// served refuses, as not found, an authority that does not serve ACME now:
// one whose setting is off, and the admin authority whatever its setting.
func (w *WFE) served(ctx context.Context, name string) error {
	if name == w.o.AdminAuthority {
		return errs.New(errs.NotFound, "authority %q does not serve ACME", name)
	}
	s, err := w.settingsOf(ctx, name)
	switch {
	case errs.KindOf(err) == errs.NotFound:
		return errs.Wrap(errs.NotFound, err, "no ACME server for authority %q", name)
	case err != nil:
		return err
	case !s.acme:
		return errs.New(errs.NotFound, "authority %q does not serve ACME", name)
	}
	return nil
}

// requiresEAB reports whether new accounts of an authority need an
// external account binding; if its settings cannot be read, they do.
func (w *WFE) requiresEAB(ctx context.Context, name string) bool {
	s, err := w.settingsOf(ctx, name)
	return err != nil || s.requireEAB
}

// Warnings says what the operator should know about what this front end
// serves: the admin authority's ACME setting is on, yet it is not served.
// The server shows them in /health.
func (w *WFE) Warnings(ctx context.Context) []string {
	if w.o.AdminAuthority == "" {
		return nil
	}
	if s, err := w.settingsOf(ctx, w.o.AdminAuthority); err != nil || !s.acme {
		return nil
	}
	return []string{fmt.Sprintf("authority %q has ACME on but is the admin authority: ACME is not served for it (turn it off: signet authority set %s --acme=false)",
		w.o.AdminAuthority, w.o.AdminAuthority)}
}
