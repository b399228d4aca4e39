package ca

import (
	"context"
	"crypto/x509"
	"sync"
	"time"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/kms"
	"signet/internal/profile"
	"signet/internal/store"
)

// State is whether an authority can sign now. Each authority has its own:
// one that cannot sign never stops the others.
type State string

const (
	Unlocked    State = "unlocked"    // its key is open and signs
	Locked      State = "locked"      // its PIN or passphrase is given at run time and has not been (signet unlock)
	Unavailable State = "unavailable" // its key cannot be used: missing, not matching its certificate, module or token absent
	Disabled    State = "disabled"    // taken out of service (signet authority disable)
)

// AuthorityState is an authority's state and, unless unlocked, why.
type AuthorityState struct {
	State  State  `json:"state"`
	Reason string `json:"reason,omitempty"`
}

// stateOf is the state a failure to open or use an authority's key puts it in.
func stateOf(err error) AuthorityState {
	switch errs.KindOf(err) {
	case errs.Locked:
		return AuthorityState{State: Locked, Reason: err.Error()}
	case errs.Disabled:
		return AuthorityState{State: Disabled, Reason: err.Error()}
	}
	return AuthorityState{State: Unavailable, Reason: err.Error()}
}

// states remembers each authority's state as last seen: when its key was
// opened or failed to open, and when a signature failed.
type states struct{ m sync.Map } // name → AuthorityState

func (s *states) set(name string, st AuthorityState) { s.m.Store(name, st) }

func (s *states) get(name string) (AuthorityState, bool) {
	v, ok := s.m.Load(name)
	if !ok {
		return AuthorityState{}, false
	}
	return v.(AuthorityState), true
}

// failed is called when an authority's key failed to sign: a token pulled
// out, a module that lost its session. The authority turns unavailable and
// is forgotten, with the token session, so that the next use opens it
// again: its first successful signature brings it back.
func (c *CA) failed(rec store.Authority, err error) {
	c.states.set(rec.Name, AuthorityState{State: Unavailable, Reason: err.Error()})
	c.auths.Forget(rec.Name)
	c.keys.Drop(rec.KeyURI)
}

// State is an authority's state as last seen in this process; an
// authority not used yet is unlocked until it fails.
func (c *CA) State(name string) AuthorityState {
	if st, ok := c.states.get(name); ok {
		return st
	}
	return AuthorityState{State: Unlocked}
}

// disabledTTL bounds how long this process may keep issuing for an
// authority another process (the CLI, another node) took out of service.
const disabledTTL = time.Second

type disabledAt struct {
	disabled bool
	read     time.Time
}

// InService refuses an authority taken out of service, reading the store
// at most once per disabledTTL.
func (c *CA) InService(ctx context.Context, name string) error {
	if v, ok := c.disabled.Load(name); ok && time.Since(v.(disabledAt).read) < disabledTTL {
		if v.(disabledAt).disabled {
			return errDisabled(name)
		}
		return nil
	}
	start := time.Now()
	rec, err := c.store.Authority(ctx, name)
	if err != nil {
		return err
	}
	c.disabled.Store(name, disabledAt{disabled: rec.Disabled, read: start})
	if rec.Disabled {
		return errDisabled(name)
	}
	return nil
}

func errDisabled(name string) error {
	return errs.New(errs.Disabled, "authority %q is out of service: signet authority enable %s puts it back", name, name)
}

// Check opens an authority's key, unless it is out of service, and returns
// its state, which it remembers for Status: serve checks every authority
// when it starts, on SIGHUP and after an unlock. SSH authorities' keys
// are opened as sshca would.
func (c *CA) Check(ctx context.Context, rec store.Authority) AuthorityState {
	st := AuthorityState{State: Unlocked}
	switch {
	case rec.Disabled:
		st = AuthorityState{State: Disabled}
	case profile.Purpose(rec.Purpose).IsSSH():
		if _, err := c.keys.Signer(ctx, rec.KeyURI); err != nil {
			st = stateOf(err)
		}
	default:
		c.auths.Forget(rec.Name) // the key may have changed (unlocked, put back)
		if _, err := c.authority(ctx, rec.Name); err != nil {
			st = stateOf(err)
		}
	}
	c.states.set(rec.Name, st)
	return st
}

// Target names what an operator unlocks or locks: the token with a
// label, or the key of an authority (its token, or the software keys).
type Target struct {
	Authority string `json:"authority,omitempty"`
	Token     string `json:"token,omitempty"`
}

// resolve gives the kms target (token label, "" for software keys) and
// the authority to name in the audit event.
func (c *CA) resolve(ctx context.Context, t Target) (string, error) {
	switch {
	case t.Authority != "" && t.Token != "":
		return "", errs.New(errs.Malformed, "give an authority or a token to unlock, not both")
	case t.Token != "":
		return t.Token, nil
	case t.Authority == "":
		return "", errs.New(errs.Malformed, "give the authority or the token to unlock")
	}
	rec, err := c.store.Authority(ctx, t.Authority)
	if err != nil {
		return "", err
	}
	l := c.keys.Locate(rec.KeyURI)
	if l.File == "" && l.Token == "" {
		return "", errs.New(errs.Rejected, "authority %q: its key URI names no token", t.Authority)
	}
	return l.Token, nil
}

// Unlock gives the secret of a target to the keys (kms.Manager.Unlock),
// opens every authority afresh and writes an authority.unlock event. A
// refused secret is never tried again: the next try is the operator's.
func (c *CA) Unlock(ctx context.Context, t Target, secret []byte, force bool, actor string) error {
	target, err := c.resolve(ctx, t)
	if err != nil {
		return err
	}
	err = c.keys.Unlock(ctx, target, secret, force)
	if err == nil && target == "" {
		err = c.checkPassphrase(ctx)
	}
	data := map[string]any{"token": target, "force": force, "ok": err == nil}
	if err != nil {
		data["error"] = err.Error()
	}
	if aerr := c.store.AppendEvent(ctx, c.event(audit.Event{Kind: audit.KindAuthorityUnlock, Actor: actor, Authority: t.Authority, Subject: targetName(target)}, data)); aerr != nil && err == nil {
		return aerr
	}
	if err != nil {
		return err
	}
	c.forgetAll()
	return nil
}

// Lock forgets the secret of a target and closes what it opened; the
// authorities that need it turn locked. It writes an authority.lock event.
func (c *CA) Lock(ctx context.Context, t Target, actor string) error {
	target, err := c.resolve(ctx, t)
	if err != nil {
		return err
	}
	c.keys.Lock(target)
	c.forgetAll()
	return c.store.AppendEvent(ctx, c.event(audit.Event{Kind: audit.KindAuthorityLock, Actor: actor, Authority: t.Authority, Subject: targetName(target)}, map[string]any{"token": target}))
}

// checkPassphrase opens one software key with the passphrase just given,
// so that a wrong one is refused now (and forgotten), like a wrong PIN.
func (c *CA) checkPassphrase(ctx context.Context) error {
	list, err := c.store.Authorities(ctx)
	if err != nil {
		return err
	}
	for _, rec := range list {
		if c.keys.Locate(rec.KeyURI).File == "" {
			continue
		}
		if _, err := c.keys.Signer(ctx, rec.KeyURI); errs.KindOf(err) == errs.Unauthorized {
			c.keys.Lock("")
			return err
		}
		return nil
	}
	return nil
}

func targetName(target string) string {
	if target == "" {
		return "software keys"
	}
	return "token " + target
}

// Ready refuses, without signing, what an authority cannot issue now:
// out of service, locked, or unavailable (its key is tried again).
func (c *CA) Ready(ctx context.Context, name string) error {
	if err := c.InService(ctx, name); err != nil {
		return err
	}
	switch st := c.State(name); st.State {
	case Locked:
		return errs.New(errs.Locked, "authority %q is locked: an operator unlocks it with signet unlock --authority %s", name, name)
	case Unavailable:
		// Its key may be back (a token put back in): try to open it.
		if _, err := c.authority(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

func (c *CA) forgetAll() {
	for _, name := range c.auths.Keys() {
		c.auths.Forget(name)
	}
}

// AuthorityStatus is what an operator sees of one authority: signet
// status, /api/v1/status and the console show it. Status computes it, in
// this one place.
type AuthorityStatus struct {
	Name     string       `json:"name"`
	Purpose  string       `json:"purpose"`
	Parent   string       `json:"parent,omitempty"`
	Key      kms.Location `json:"key"`
	State    State        `json:"state"`
	Reason   string       `json:"reason,omitempty"`
	NotAfter *time.Time   `json:"not_after,omitempty"` // its CA certificate's; none for SSH authorities
	ACME     bool         `json:"acme"`
	Issued   int          `json:"issued"`
	Revoked  int          `json:"revoked"`
}

// Lister is what Status reads of the store.
type Lister interface {
	Authorities(ctx context.Context) ([]store.Authority, error)
	CertificateCounts(ctx context.Context) ([]store.CertificateCount, error)
}

// Status gives every authority's status, by name. Authorities not yet
// checked in this process are (Check); the states of the others are as
// last seen.
func (c *CA) Status(ctx context.Context, st Lister) ([]AuthorityStatus, error) {
	list, err := st.Authorities(ctx)
	if err != nil {
		return nil, err
	}
	type counts struct{ issued, revoked int }
	n := map[string]*counts{}
	counted, err := st.CertificateCounts(ctx)
	if err != nil {
		return nil, err
	}
	for _, cc := range counted {
		if n[cc.Authority] == nil {
			n[cc.Authority] = &counts{}
		}
		n[cc.Authority].issued += int(cc.Count)
		if cc.Status == "revoked" {
			n[cc.Authority].revoked += int(cc.Count)
		}
	}
	out := make([]AuthorityStatus, 0, len(list))
	for _, rec := range list {
		st, ok := c.states.get(rec.Name)
		switch {
		case rec.Disabled:
			st = AuthorityState{State: Disabled}
		case !ok || st.State == Disabled:
			st = c.Check(ctx, rec)
		}
		s := AuthorityStatus{Name: rec.Name, Purpose: rec.Purpose, Parent: rec.Parent, Key: c.keys.Locate(rec.KeyURI),
			State: st.State, Reason: st.Reason, ACME: rec.ACME}
		if len(rec.CertDER) > 0 {
			if cert, err := x509.ParseCertificate(rec.CertDER); err == nil {
				s.NotAfter = &cert.NotAfter
			}
		}
		if k := n[rec.Name]; k != nil {
			s.Issued, s.Revoked = k.issued, k.revoked
		}
		out = append(out, s)
	}
	return out, nil
}
