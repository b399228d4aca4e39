package revocation

import (
	"context"
	"iter"
	"net/http"
	"sync/atomic"
	"time"

	"signet/internal/ca"
	"signet/internal/store"
)

// crlDoc is one signed shard CRL with its HTTP headers computed once.
type crlDoc struct {
	ca.SignedCRL
	etag, lastModified, expires []string
}

// crlState holds the current CRL of each shard.
type crlState struct {
	docs atomic.Pointer[[]*crlDoc] // index = shard; replaced, never changed
}

func (c *crlState) get(shard int) *crlDoc {
	p := c.docs.Load()
	if p == nil || shard < 0 || shard >= len(*p) {
		return nil
	}
	return (*p)[shard]
}

// crlCutoff is the expiry before which revoked certificates leave the CRLs:
// RFC 5280 3.3 wants an entry on one regularly scheduled CRL past the
// certificate's expiry, so it stays for one CRL validity after it.
func crlCutoff(now time.Time, validity time.Duration) time.Time { return now.Add(-validity) }

// signCRLs signs the given shards (all when shards is nil) of a and makes
// them current.
func (s *Service) signCRLs(ctx context.Context, a *authority, shards []int, progress func(ca.SignedCRL)) ([]ca.SignedCRL, error) {
	// The entries are copied out under the read lock and signed without
	// it: signing writes the store and may wait on an HSM, and issuance
	// (Service.issued, called synchronously by ca.Issue) needs the write
	// lock, so holding it would make every issuance wait for a CRL run.
	a.mu.RLock()
	if shards == nil {
		for i := range a.shards {
			shards = append(shards, i)
		}
	}
	cutoff := crlCutoff(s.now(), s.o.CRLValidity)
	lists := make([][]listed, len(shards))
	for i, sh := range shards {
		for r := range a.revoked(sh, cutoff) {
			var k serialKey
			copy(k[len(k)-len(r.Serial):], r.Serial)
			lists[i] = append(lists[i], listed{key: k, revokedAt: unix32(r.RevokedAt), reason: uint8(r.Reason)})
		}
	}
	a.mu.RUnlock()
	req := ca.CRLRequest{Authority: a.rec.Name, Validity: s.o.CRLValidity, Progress: progress}
	for i, sh := range shards {
		req.Shards = append(req.Shards, ca.CRLShard{Shard: sh, Entries: listedEntries(lists[i])})
	}
	signed, err := s.o.CA.SignCRLs(ctx, req)
	if err != nil {
		return nil, err
	}
	old := a.crl.docs.Load()
	docs := make([]*crlDoc, len(a.shards))
	if old != nil {
		copy(docs, *old)
	}
	for _, c := range signed {
		if c.Shard < len(docs) {
			docs[c.Shard] = &crlDoc{SignedCRL: c, etag: []string{etag(c.DER)},
				lastModified: []string{c.ThisUpdate.UTC().Format(http.TimeFormat)},
				expires:      []string{c.NextUpdate.UTC().Format(http.TimeFormat)}}
		}
	}
	a.crl.docs.Store(&docs)
	return signed, nil
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

// listedEntries yields a list as CRL entries; the yielded Serial is valid
// during the call only.
func listedEntries(l []listed) iter.Seq[ca.Revoked] {
	return func(yield func(ca.Revoked) bool) {
		var buf serialKey
		for _, e := range l {
			if !yield(ca.Revoked{Serial: e.key.bytes(&buf), RevokedAt: time.Unix(int64(e.revokedAt), 0), Reason: int(e.reason)}) {
				return
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
// signs the CRLs of all its shards, for `signet crl`. It keeps no index
// (one pass, 28 bytes per entry, each shard's list dropped once signed)
// and reports progress every 100,000 certificates read and at each shard.
func SignAll(ctx context.Context, o Options, name string, progress func(Progress)) ([]ca.SignedCRL, error) {
	o = o.withDefaults() // not New: it would register with o.CA.OnIssue for good
	rec, err := o.Store.Authority(ctx, name)
	if err != nil {
		return nil, err
	}
	lists := make([][]listed, max(rec.Shards, 1))
	n := 0
	cutoff := crlCutoff(o.Clock(), o.CRLValidity)
	q := store.StatusQuery{NotAfterAfter: cutoff, RevokedOnly: true, Authority: name}
	_, err = o.Store.Statuses(ctx, q, func(c store.CertStatus) error {
		k, ok := keyOfHex(c.Serial)
		if !ok || c.Shard >= len(lists) {
			return nil
		}
		lists[c.Shard] = append(lists[c.Shard], listed{key: k, revokedAt: unix32(c.RevokedAt), reason: uint8(c.Reason)})
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
	req := ca.CRLRequest{Authority: name, Validity: o.CRLValidity, Progress: func(c ca.SignedCRL) {
		lists[c.Shard] = nil
		if progress != nil {
			progress(Progress{Loaded: n, Signed: &c})
		}
	}}
	for i := range lists {
		req.Shards = append(req.Shards, ca.CRLShard{Shard: i, Entries: func(yield func(ca.Revoked) bool) {
			listedEntries(lists[i])(yield) // lists[i] read late: Progress drops it once signed
		}})
	}
	return o.CA.SignCRLs(ctx, req)
}
