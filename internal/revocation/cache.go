package revocation

import (
	"sync"
)

// cacheKey names one signed response: its authority, the CertID hash the
// request used (the response must echo it) and the serial.
type cacheKey struct {
	a *authority
	k respKey
}

// respCache holds signed OCSP responses within a budget of bytes, so
// that the responder's memory does not grow with the inventory: ten
// million certificates would need about 30 GB of responses (two CertID
// hashes each). It keeps two generations: responses go into the current
// one, and when it holds half the budget it becomes the old one and the
// previous old one is dropped; a hit in the old one moves the response
// back into the current one. What is asked for often stays, what is not
// goes, and a hit takes only the read lock (a promotion, once per
// generation, takes the write lock).
//
// gen counts invalidations: a response signed from a status read before
// one is not cached (see put), so an invalidation is never undone by a
// signature that raced it.
type respCache struct {
	budget int // bytes

	mu                 sync.RWMutex
	cur, old           map[cacheKey]*response
	curBytes, oldBytes int
	gen                uint64 // invalidations of known statuses (revocations)
	issuedGen          uint64 // issuances: they change "unknown" answers only
}

// respOverhead approximates what a cached response costs besides its DER:
// the struct, its header strings and two map entries' share.
const respOverhead = 400

func (r *response) cost() int { return len(r.der) + respOverhead }

func newRespCache(budget int) *respCache {
	return &respCache{budget: budget, cur: map[cacheKey]*response{}, old: map[cacheKey]*response{}}
}

// get returns the cached response for k, fresh or not.
func (c *respCache) get(k cacheKey) *response {
	c.mu.RLock()
	r, cur := c.cur[k], true
	if r == nil {
		r, cur = c.old[k], false
	}
	c.mu.RUnlock()
	if r != nil && !cur {
		c.mu.Lock()
		if c.old[k] == r {
			delete(c.old, k)
			c.oldBytes -= r.cost()
			c.add(k, r)
		}
		c.mu.Unlock()
	}
	return r
}

// generation returns the counters put compares with.
func (c *respCache) generation() (gen, issued uint64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen, c.issuedGen
}

// put caches r for k unless an invalidation came since gen and issued
// were read (a known status: a revocation; "unknown": an issuance too).
// It reports whether r was cached.
func (c *respCache) put(k cacheKey, r *response, gen, issued uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen || !r.known && c.issuedGen != issued {
		return false
	}
	c.replace(k, r)
	return true
}

// set caches r for k whatever came before: r was signed from a status
// read under the refresh, which applies invalidations itself.
func (c *respCache) set(k cacheKey, r *response) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.replace(k, r)
}

// replace puts r in place of what is cached for k. Called under mu.
func (c *respCache) replace(k cacheKey, r *response) {
	if old := c.cur[k]; old != nil {
		delete(c.cur, k)
		c.curBytes -= old.cost()
	}
	if old := c.old[k]; old != nil {
		delete(c.old, k)
		c.oldBytes -= old.cost()
	}
	c.add(k, r)
}

// add puts r into the current generation, turning it old when it holds
// half the budget. Called under mu, with k in neither generation.
func (c *respCache) add(k cacheKey, r *response) {
	c.cur[k] = r
	c.curBytes += r.cost()
	if c.curBytes > c.budget/2 {
		c.old, c.oldBytes = c.cur, c.curBytes
		c.cur, c.curBytes = map[cacheKey]*response{}, 0
	}
}

// invalidate drops the responses for a's serial in every CertID hash;
// issued (the serial was just issued), its "unknown" answers only.
func (c *respCache) invalidate(a *authority, serial serialKey, issued bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if issued {
		c.issuedGen++
	} else {
		c.gen++
	}
	for _, h := range requestHashes {
		k := cacheKey{a, respKey{h, serial}}
		if r := c.cur[k]; r != nil && issued && r.known {
			continue
		}
		if r := c.old[k]; r != nil && issued && r.known {
			continue
		}
		c.drop(k)
	}
}

// drop removes what is cached for k. Called under mu.
func (c *respCache) drop(k cacheKey) {
	if r := c.cur[k]; r != nil {
		delete(c.cur, k)
		c.curBytes -= r.cost()
	}
	if r := c.old[k]; r != nil {
		delete(c.old, k)
		c.oldBytes -= r.cost()
	}
}

// remove drops k if r is still what is cached for it.
func (c *respCache) remove(k cacheKey, r *response) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur[k] == r || c.old[k] == r {
		c.drop(k)
	}
}

// entries returns a's cached responses that keep says to, as of now.
func (c *respCache) entries(a *authority, keep func(respKey, *response) bool) map[respKey]*response {
	out := map[respKey]*response{}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, m := range []map[cacheKey]*response{c.old, c.cur} {
		for k, r := range m {
			if k.a == a && keep(k.k, r) {
				out[k.k] = r
			}
		}
	}
	return out
}

// size returns the responses cached and their cost in bytes.
func (c *respCache) size() (n, bytes int) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.cur) + len(c.old), c.curBytes + c.oldBytes
}
