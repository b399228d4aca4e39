package wfe

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"signet/internal/errs"
	"signet/internal/store"
)

// accountTTL bounds how stale a cached account may be. Every POST signed
// with a kid needs its account's key and status; reading them from the
// store each time was a third of the store reads of an issuance. A node
// forgets an account as soon as it changes it itself, so on one node a
// key change or deactivation takes effect at once; on the other nodes
// sharing the store it takes effect within accountTTL.
const accountTTL = time.Second

// maxCachedAccounts bounds the cache's memory; when full it starts over.
const maxCachedAccounts = 10000

// cachedAccount is an account as read from the store, with its key parsed.
type cachedAccount struct {
	acct store.ACMEAccount
	key  *jose.JSONWebKey
	read time.Time // monotonic: staleness is real time, not the injected clock
}

// accountCache holds the accounts that signed recently on this node. It
// takes no lock: every POST reads it, and the hot path has no global lock.
type accountCache struct {
	m sync.Map     // account id → *cachedAccount
	n atomic.Int64 // entries stored since the last clear, for the bound
	// epoch counts forgets: a read that began before one is not cached,
	// since it may have seen the account as it was before the change.
	epoch atomic.Uint64
}

func (c *accountCache) get(id string) *cachedAccount {
	v, ok := c.m.Load(id)
	if !ok {
		return nil
	}
	e := v.(*cachedAccount)
	if time.Since(e.read) > accountTTL {
		return nil
	}
	return e
}

func (c *accountCache) begin() uint64 { return c.epoch.Load() }

// put caches e, read from the store after begin returned epoch. It stores
// first and checks the epoch after: a forget either came before the check,
// and put takes its entry back, or it comes after the store, and deletes it.
func (c *accountCache) put(e *cachedAccount, epoch uint64) {
	if c.n.Add(1) > maxCachedAccounts {
		c.m.Clear()
		c.n.Store(1)
	}
	c.m.Store(e.acct.ID, e)
	if c.epoch.Load() != epoch {
		c.m.CompareAndDelete(e.acct.ID, e)
	}
}

// forget drops an account this node has just changed.
func (c *accountCache) forget(id string) {
	c.epoch.Add(1)
	c.m.Delete(id)
}

// signer returns an account and its parsed key, from the cache while it
// is fresh, else from the store.
func (w *WFE) signer(ctx context.Context, id string) (*cachedAccount, error) {
	if e := w.accounts.get(id); e != nil {
		return e, nil
	}
	start, epoch := time.Now(), w.accounts.begin()
	acct, err := w.store.ACMEAccount(ctx, id)
	if err != nil {
		return nil, err
	}
	key := new(jose.JSONWebKey)
	if err := key.UnmarshalJSON(acct.Key); err != nil {
		return nil, errs.Wrap(errs.Internal, err, "stored key of account %s", id)
	}
	e := &cachedAccount{acct: acct, key: key, read: start}
	w.accounts.put(e, epoch)
	return e, nil
}
