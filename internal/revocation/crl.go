package revocation

import (
	"context"
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
	a.mu.RLock()
	if shards == nil {
		for i := range a.shards {
			shards = append(shards, i)
		}
	}
	cutoff := crlCutoff(s.now(), s.o.CRLValidity)
	req := ca.CRLRequest{Authority: a.rec.Name, Validity: s.o.CRLValidity, Progress: progress}
	for _, sh := range shards {
		req.Shards = append(req.Shards, ca.CRLShard{Shard: sh, Entries: a.revoked(sh, cutoff)})
	}
	signed, err := s.o.CA.SignCRLs(ctx, req)
	a.mu.RUnlock()
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

// Progress reports on SignAll: Loaded certificates so far while reading,
// then each signed shard.
type Progress struct {
	Loaded int
	Signed *ca.SignedCRL
}

// SignAll reads one authority's certificates from the store and signs the
// CRLs of all its shards, for `signet crl`. It reports progress every
// 100,000 certificates read and at each signed shard.
func SignAll(ctx context.Context, o Options, name string, progress func(Progress)) ([]ca.SignedCRL, error) {
	s := New(o)
	rec, err := o.Store.Authority(ctx, name)
	if err != nil {
		return nil, err
	}
	a, err := newAuthority(rec, o.CA.BaseURL(rec))
	if err != nil {
		return nil, err
	}
	n := 0
	_, err = o.Store.Statuses(ctx, 0, crlCutoff(s.now(), s.o.CRLValidity), func(c store.CertStatus) error {
		if c.Authority != name {
			return nil
		}
		if k, ok := keyOfHex(c.Serial); ok {
			a.put(k, c)
		}
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
	return s.signCRLs(ctx, a, nil, func(c ca.SignedCRL) {
		if progress != nil {
			progress(Progress{Loaded: n, Signed: &c})
		}
	})
}
