package revocation

import (
	"context"
	"iter"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"signet/internal/ca"
	"signet/internal/store"
)

// crlDoc is one signed CRL with its HTTP headers computed once.
type crlDoc struct {
	ca.SignedCRL
	etag, lastModified, expires []string
}

func newCRLDoc(c ca.SignedCRL) *crlDoc {
	return &crlDoc{SignedCRL: c, etag: []string{etag(c.DER)},
		lastModified: []string{c.ThisUpdate.UTC().Format(http.TimeFormat)},
		expires:      []string{c.NextUpdate.UTC().Format(http.TimeFormat)}}
}

// crlState holds the current CRL of each shard and the whole CRL.
type crlState struct {
	docs  atomic.Pointer[[]*crlDoc] // index = shard; replaced, never changed
	whole atomic.Pointer[crlDoc]
	// wholeStale: a revocation since the whole CRL was signed. Refresh
	// alone reads and writes it (under refreshMu).
	wholeStale bool
}

func (c *crlState) get(shard int) *crlDoc {
	if shard == ca.WholeCRL {
		return c.whole.Load()
	}
	p := c.docs.Load()
	if p == nil || shard < 0 || shard >= len(*p) {
		return nil
	}
	return (*p)[shard]
}

// install makes signed CRLs current; with onlyNewer (CRLs another node
// published), each unless the current one is newer.
func (c *crlState) install(shards int, onlyNewer bool, signed ...ca.SignedCRL) {
	old := c.docs.Load()
	docs := make([]*crlDoc, shards)
	if old != nil {
		docs = make([]*crlDoc, max(shards, len(*old)))
		copy(docs, *old)
	}
	for _, s := range signed {
		if cur := c.get(s.Shard); onlyNewer && cur != nil && cur.ThisUpdate.After(s.ThisUpdate) {
			continue
		}
		switch {
		case s.Shard == ca.WholeCRL:
			c.whole.Store(newCRLDoc(s))
		case s.Shard >= 0:
			if s.Shard >= len(docs) {
				docs = append(docs, make([]*crlDoc, s.Shard+1-len(docs))...)
			}
			docs[s.Shard] = newCRLDoc(s)
		}
	}
	c.docs.Store(&docs)
}

// crlCutoff is the expiry before which revoked certificates leave the CRLs:
// RFC 5280 3.3 wants an entry on one regularly scheduled CRL past the
// certificate's expiry, so it stays for one CRL validity after it.
func crlCutoff(now time.Time, validity time.Duration) time.Time { return now.Add(-validity) }

// signCRLs signs the given shards (all when shards is nil) of a, and its
// whole CRL if whole, and makes them current.
func (s *Service) signCRLs(ctx context.Context, a *authority, shards []int, whole bool, progress func(ca.SignedCRL)) ([]ca.SignedCRL, error) {
	// The entries are copied out under the read lock and signed without
	// it: signing writes the store and may wait on an HSM, and issuance
	// (Service.issued, called synchronously by ca.Issue) needs the write
	// lock, so holding it would make every issuance wait for a CRL run.
	a.mu.RLock()
	if shards == nil && !whole {
		for i := range a.shards {
			shards = append(shards, i)
		}
	}
	cutoff := crlCutoff(s.now(), s.o.CRLValidity)
	lists := make([]entryList, len(a.shards)) // by shard: those to sign, all for the whole CRL
	for sh := range a.shards {
		if !whole && !slices.Contains(shards, sh) {
			continue
		}
		for r := range a.revoked(sh, cutoff) {
			var k serialKey
			copy(k[len(k)-len(r.Serial):], r.Serial)
			lists[sh].add(listed{key: k, revokedAt: unix32(r.RevokedAt), reason: uint8(r.Reason)})
		}
	}
	n := len(a.shards)
	a.mu.RUnlock()
	req := ca.CRLRequest{Authority: a.rec.Name, Validity: s.o.CRLValidity, Progress: progress, Actor: "revocation"}
	for _, sh := range shards {
		req.Shards = append(req.Shards, ca.CRLShard{Shard: sh, Entries: listedEntries(lists[sh])})
	}
	if whole {
		req.Shards = append(req.Shards, ca.CRLShard{Shard: ca.WholeCRL, Entries: listedEntries(lists...)})
	}
	signed, err := s.o.CA.SignCRLs(ctx, req)
	if err != nil {
		return nil, err
	}
	a.crl.install(n, false, signed...)
	if whole {
		a.crl.wholeStale = false
	}
	return signed, nil
}

// WholeCRLInterval is the least time between two whole CRLs signed for
// revocations: a whole CRL of a million entries is 38 MB, too much to
// re-sign, publish and have every relying party fetch at each revocation.
// The shard CRLs and OCSP show a revocation at once.
const WholeCRLInterval = time.Minute

// wholeDue says whether a's whole CRL is to be signed now: there is none
// yet, it is half-way to its nextUpdate, or revocations (dirty shards,
// now or before) made it stale and WholeCRLInterval has passed since it
// was signed (thisUpdate is truncated to the second, hence the second
// more).
func (s *Service) wholeDue(a *authority, dirty map[int]bool) bool {
	if len(dirty) > 0 {
		a.crl.wholeStale = true
	}
	d, now := a.crl.whole.Load(), s.now()
	return d == nil || now.After(d.ThisUpdate.Add(s.o.CRLValidity/2)) ||
		(a.crl.wholeStale && !now.Before(d.ThisUpdate.Add(WholeCRLInterval+time.Second)))
}

// staleShards lists shards with no CRL yet or one past half its validity.
func (s *Service) staleShards(a *authority, dirty map[int]bool) []int {
	now := s.now()
	var out []int
	for i := range max(a.rec.Shards, 1) {
		d := a.crl.get(i)
		if dirty[i] || d == nil || now.After(d.ThisUpdate.Add(s.o.CRLValidity/2)) {
			out = append(out, i)
		}
	}
	return out
}

// listed is one CRL entry copied out of the mirror or read from the store.
type listed struct {
	key       serialKey
	revokedAt uint32
	reason    uint8
}

// entryList holds entries in chunks of chunkLen: it grows without copying
// what it holds, so a million entries take 28 MB and leave no garbage of
// outgrown arrays behind (which the whole CRL's one list of a million did,
// about 100 MB of it).
type entryList [][]listed

const chunkLen = 4096

func (l *entryList) add(e listed) {
	if n := len(*l); n == 0 || len((*l)[n-1]) == chunkLen {
		*l = append(*l, make([]listed, 0, chunkLen))
	}
	last := &(*l)[len(*l)-1]
	*last = append(*last, e)
}

// listedEntries yields lists, one after the other, as CRL entries; the
// yielded Serial is valid during the call only.
func listedEntries(lists ...entryList) iter.Seq[ca.Revoked] {
	return func(yield func(ca.Revoked) bool) {
		var buf serialKey
		for _, l := range lists {
			for _, chunk := range l {
				for _, e := range chunk {
					if !yield(ca.Revoked{Serial: e.key.bytes(&buf), RevokedAt: time.Unix(int64(e.revokedAt), 0), Reason: int(e.reason)}) {
						return
					}
				}
			}
		}
	}
}

// Progress reports on SignAll: Loaded certificates so far while reading,
// then each signed shard.
type Progress struct {
	Loaded int
	Signed *ca.SignedCRL
}

// SignAll reads one authority's revoked certificates from the store and
// signs the CRLs of all its shards, or (whole) its whole CRL alone, for
// `signet crl`. It keeps no index (one pass, 28 bytes per entry, each
// shard's list dropped once signed) and reports progress every 100,000
// certificates read and at each CRL signed.
func SignAll(ctx context.Context, o Options, name string, whole bool, progress func(Progress)) ([]ca.SignedCRL, error) {
	o = o.withDefaults() // not New: it would register with o.CA.OnIssue for good
	rec, err := o.Store.Authority(ctx, name)
	if err != nil {
		return nil, err
	}
	shards := max(rec.Shards, 1)
	lists := make([]entryList, shards) // whole: one list, lists[0]
	if whole {
		lists = lists[:1]
	}
	n := 0
	cutoff := crlCutoff(o.Clock(), o.CRLValidity)
	q := store.StatusQuery{NotAfterAfter: cutoff, RevokedOnly: true, Authority: name}
	_, err = o.Store.Statuses(ctx, q, func(c store.CertStatus) error {
		k, ok := keyOfHex(c.Serial)
		if !ok || (!whole && c.Shard >= shards) {
			return nil
		}
		i := c.Shard
		if whole {
			i = 0
		}
		lists[i].add(listed{key: k, revokedAt: unix32(c.RevokedAt), reason: uint8(c.Reason)})
		if n++; n%100000 == 0 && progress != nil {
			progress(Progress{Loaded: n})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if progress != nil {
		progress(Progress{Loaded: n})
	}
	req := ca.CRLRequest{Authority: name, Validity: o.CRLValidity, Actor: "revocation", Progress: func(c ca.SignedCRL) {
		lists[max(c.Shard, 0)] = nil
		if progress != nil {
			progress(Progress{Loaded: n, Signed: &c})
		}
	}}
	for i := range lists {
		shard := i
		if whole {
			shard = ca.WholeCRL
		}
		req.Shards = append(req.Shards, ca.CRLShard{Shard: shard, Entries: func(yield func(ca.Revoked) bool) {
			listedEntries(lists[i])(yield) // lists[i] read late: Progress drops it once signed
		}})
	}
	return o.CA.SignCRLs(ctx, req)
}
