package wfe

import (
	"context"
	"sync"
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

// accountCache holds the accounts that signed recently on this node.
type accountCache struct {
	mu sync.Mutex
	m  map[string]*cachedAccount
	// epoch counts forgets: a read that began before one is not cached,
	// since it may have seen the account as it was before the change.
	epoch uint64
}

func (c *accountCache) get(id string) *cachedAccount {
	c.mu.Lock()
	e := c.m[id]
	c.mu.Unlock()
	if e == nil || time.Since(e.read) > accountTTL {
		return nil
	}
	return e
}

func (c *accountCache) begin() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

func (c *accountCache) put(e *cachedAccount, epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch != c.epoch {
		return
	}
	if c.m == nil || len(c.m) >= maxCachedAccounts {
		c.m = make(map[string]*cachedAccount)
	}
	c.m[e.acct.ID] = e
}

// forget drops an account this node has just changed.
func (c *accountCache) forget(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.epoch++
	c.mu.Unlock()
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
