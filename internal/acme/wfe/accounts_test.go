package wfe

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"signet/internal/store"
)

func cached(id string) *cachedAccount {
	return &cachedAccount{acct: store.ACMEAccount{ID: id}, read: time.Now()}
}

// TestAccountCache: a read that began before a forget is not cached, a
// forget drops what was cached, stale entries are not served, and the
// cache stays bounded.
func TestAccountCache(t *testing.T) {
	var c accountCache
	epoch := c.begin()
	c.forget("a") // the account changed while it was being read
	c.put(cached("a"), epoch)
	if c.get("a") != nil {
		t.Fatal("cached an account read before a change to it")
	}
	c.put(cached("a"), c.begin())
	if c.get("a") == nil {
		t.Fatal("fresh account not cached")
	}
	c.forget("a")
	if c.get("a") != nil {
		t.Fatal("forgotten account still served")
	}
	old := cached("b")
	old.read = time.Now().Add(-2 * accountTTL)
	c.put(old, c.begin())
	if c.get("b") != nil {
		t.Fatal("stale account served")
	}
	for i := range 3 * maxCachedAccounts {
		c.put(cached(strconv.Itoa(i)), c.begin())
	}
	n := 0
	c.m.Range(func(any, any) bool { n++; return true })
	if n > maxCachedAccounts {
		t.Fatalf("%d accounts cached, bound %d", n, maxCachedAccounts)
	}
}

// TestAccountCacheRace: puts racing forgets never leave an account cached
// from a read that began before the last forget (run with -race).
func TestAccountCacheRace(t *testing.T) {
	var c accountCache
	for round := range 200 {
		var wg sync.WaitGroup
		start := make(chan struct{})
		epochs := make(chan uint64, 4)
		for range 4 {
			epochs <- c.begin()
		}
		close(epochs)
		for epoch := range epochs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				c.put(cached("x"), epoch)
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c.forget("x")
		}()
		close(start)
		wg.Wait()
		if c.get("x") != nil {
			t.Fatalf("round %d: an account read before the forget is cached", round)
		}
	}
}
