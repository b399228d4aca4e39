package wfe_test

import (
	"context"
	"errors"
	"net/http"
	"path"
	"sync"
	"testing"

	xacme "golang.org/x/crypto/acme"

	"signet/internal/acme/wfe"
	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
)

// TestAccountChangeRaces races, over HTTP, a contact update against a key
// rollover and against a deactivation of the same account. A rollover
// that succeeded must leave the new key in place and a deactivation that
// succeeded must leave the account deactivated: before account changes
// were compare-and-set, the update wrote back the whole account as read,
// old key and valid status included.
func TestAccountChangeRaces(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for round := range 16 {
		c := e.client(nil)
		acct := e.register(c)
		next := newKey(t)
		newThumb, err := xacme.JWKThumbprint(next.Public())
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var rollover, update error
		wg.Go(func() { rollover = c.AccountKeyRollover(ctx, next) })
		wg.Go(func() {
			_, update = c.UpdateReg(ctx, &xacme.Account{URI: acct.URI, Contact: []string{"mailto:new@example.org"}})
		})
		wg.Wait()
		if rollover != nil {
			t.Fatalf("round %d: rollover: %v", round, rollover)
		}
		got, err := e.h.Store.ACMEAccountByKey(ctx, "default", newThumb)
		if err != nil {
			t.Errorf("round %d: the rollover succeeded (update: %v), yet no account has the new key: %v", round, update, err)
		} else if got.Status != store.StatusValid {
			t.Errorf("round %d: account %s is %s after rollover and update", round, got.ID, got.Status)
		}
	}
	for round := range 16 {
		c := e.client(nil)
		acct := e.register(c)
		id := path.Base(acct.URI)
		var wg sync.WaitGroup
		var deactivate error
		wg.Go(func() { deactivate = c.DeactivateReg(ctx) })
		wg.Go(func() { c.UpdateReg(ctx, &xacme.Account{URI: acct.URI, Contact: []string{"mailto:new@example.org"}}) })
		wg.Wait()
		if deactivate != nil {
			t.Fatalf("round %d: deactivate: %v", round, deactivate)
		}
		got, err := e.h.Store.ACMEAccount(ctx, id)
		if err != nil || got.Status != store.StatusDeactivated {
			t.Errorf("round %d: the deactivation succeeded, the account is %q (%v)", round, got.Status, err)
		}
	}
}

// conflicting is a store whose contact updates always find the account
// changed meanwhile.
type conflicting struct{ wfe.Store }

func (conflicting) UpdateACMEAccountContacts(context.Context, store.ACMEAccount, []string, audit.Event) error {
	return errs.New(errs.Conflict, "changed meanwhile")
}

// TestAccountConflictPersists: a change that still conflicts after the
// account was read again is answered 409 with Retry-After.
func TestAccountConflictPersists(t *testing.T) {
	e := newEnvWith(t, func(o *wfe.Options) { o.Store = conflicting{o.Store} })
	ctx := context.Background()
	c := e.client(nil)
	acct := e.register(c)
	_, err := c.UpdateReg(ctx, &xacme.Account{URI: acct.URI, Contact: []string{"mailto:new@example.org"}})
	var ae *xacme.Error
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusConflict || ae.Header.Get("Retry-After") == "" {
		t.Fatalf("update that keeps conflicting: %v, want 409 with Retry-After", err)
	}
}
