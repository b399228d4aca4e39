package revocation

import (
	"context"
	"crypto"
	"errors"
	"math/big"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ocsp"

	"signet/internal/ca"
	"signet/internal/errs"
)

// respKey names one cached response: the serial and the CertID hash the
// request used (the response must echo it).
type respKey struct {
	hash   crypto.Hash
	serial serialKey
}

// response is a signed OCSP response with its HTTP headers computed once;
// immutable but for published, replaced whole when re-signed.
type response struct {
	der                         []byte
	thisUpdate, nextUpdate      time.Time
	known                       bool // false for "unknown": not refreshed, dropped at refresh
	revoked                     bool
	etag, lastModified, expires []string
	published                   atomic.Bool // with Options.Published: kept in the store
}

// ocspState is an authority's responder. Its responses are in the
// service's cache (respCache).
type ocspState struct {
	signer atomic.Pointer[ca.OCSPSigner]
	walk   walk        // with Options.Shared, on the leader: see presign
	missed atomic.Bool // with Options.Shared, on a follower: asked for what was not published (see respond)
}

// requestHashes are the hashes an OCSP request may identify a certificate
// with: SHA-1 (what most clients send) and SHA-256.
var requestHashes = []crypto.Hash{crypto.SHA1, crypto.SHA256}

// cached returns the response for k if it is still fresh.
func (s *Service) cached(k cacheKey, now time.Time) *response {
	if r := s.cache.get(k); r != nil && now.Before(r.nextUpdate) {
		return r
	}
	return nil
}

// status reads a certificate's status from the store: found false when
// a issued no certificate with that serial.
func (s *Service) status(a *authority, serial serialKey) (e entry, found bool, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := s.o.Store.CertStatus(ctx, hexOf(serial))
	switch {
	case errs.KindOf(err) == errs.NotFound:
		return entry{}, false, nil
	case err != nil:
		return entry{}, false, err
	case c.Authority != a.rec.Name:
		return entry{}, false, nil
	}
	return entryOf(c), true, nil
}

// respond returns the response for k: from the cache, else signed now
// from the certificate's status in the store, and cached. Concurrent
// misses for one CertID share one signature (a flood of requests for a
// cold serial signs once); misses for different serials sign in parallel.
func (s *Service) respond(a *authority, k respKey, serial *big.Int) (*response, error) {
	ck := cacheKey{a, k}
	if r := s.cached(ck, s.now()); r != nil {
		return r, nil
	}
	follower := s.o.Shared != nil && !s.leadingOCSP.Load()
	v, err, _ := s.misses.Do(a.rec.Name+"\x00"+string(rune(k.hash))+string(k.serial[:]), func() (any, error) {
		// Read the counters before the status: a revocation (or issuance)
		// committed after the status was read has moved them by the time
		// r is cached, and r is then not cached (respCache.put).
		gen, issued := s.cache.generation()
		e, found, err := s.status(a, k.serial)
		if err != nil {
			return nil, err
		}
		// A follower, or a node with no responder yet (another node signs,
		// or this one before a restart), serves what was published if it
		// states what the store holds; else it signs as the leader would
		// (a serial it does not hold: unknown) and keeps that in its cache
		// alone. Without a responder nothing is signed: tryLater, or
		// unauthorized for a serial it cannot answer good or revoked.
		noResponder := a.ocsp.signer.Load() == nil
		if s.o.Published != nil && (follower || noResponder) {
			if s.live(e, found) {
				if r := s.published(a, k, e); r != nil {
					s.cache.put(ck, r, gen, issued)
					return r, nil
				}
			} else if noResponder {
				return nil, errNotIssued
			}
		}
		r, err := s.sign(a, k, serial, e, found)
		if err != nil {
			return nil, err
		}
		if testHookSigned != nil {
			testHookSigned()
		}
		s.cache.put(ck, r, gen, issued)
		return r, nil
	})
	if err != nil {
		if follower && errors.Is(err, errNoResponder) && a.ocsp.missed.CompareAndSwap(false, true) {
			s.refreshSoon() // which gives this node a responder of its own
		}
		return nil, err
	}
	return v.(*response), nil
}

// testHookSigned, nil but in tests, runs in respond between signing a
// response and caching it.
var testHookSigned func()

// sign makes the response for k from e, what the store holds for the
// serial (found false: nothing).
func (s *Service) sign(a *authority, k respKey, serial *big.Int, e entry, found bool) (*response, error) {
	signer := a.ocsp.signer.Load()
	now := s.now().UTC().Truncate(time.Second)
	// A locked authority signs nothing new, not even with its delegated
	// responder: what was signed is served until its nextUpdate, then
	// tryLater. Nor does an expired responder sign.
	if signer == nil || !now.Before(signer.Cert.NotAfter) || s.o.CA.State(a.rec.Name).State == ca.Locked {
		return nil, errNoResponder
	}
	st := ca.OCSPStatus{Serial: serial, Hash: k.hash, Status: ocsp.Unknown, ThisUpdate: now, NextUpdate: now.Add(s.o.OCSPValidity)}
	if found && e.notAfter > unix32(crlCutoff(now, s.o.CRLValidity)) {
		st.Status = ocsp.Good
		if e.revoked {
			st.Status, st.RevokedAt, st.Reason = ocsp.Revoked, time.Unix(int64(e.revokedAt), 0).UTC(), int(e.reason)
		}
	}
	der, err := signer.Respond(st)
	if err != nil {
		return nil, err
	}
	next := st.NextUpdate
	if next.After(signer.Cert.NotAfter) {
		next = signer.Cert.NotAfter
	}
	return &response{
		der: der, thisUpdate: now, nextUpdate: next, known: st.Status != ocsp.Unknown, revoked: st.Status == ocsp.Revoked,
		etag: []string{etag(der)}, lastModified: []string{now.Format(http.TimeFormat)},
		expires: []string{next.UTC().Format(http.TimeFormat)},
	}, nil
}

// renewResponder issues a's responder certificate when it has none or
// its certificate is past half its life; renewed says an old one was
// replaced.
func (s *Service) renewResponder(ctx context.Context, a *authority) (renewed bool, err error) {
	signer := a.ocsp.signer.Load()
	if signer != nil && !s.now().After(signer.Cert.NotAfter.Add(-s.o.ResponderValidity/2)) {
		return false, nil
	}
	next, err := s.o.CA.IssueOCSPResponder(ctx, a.rec.Name, s.o.ResponderValidity, "revocation")
	if err != nil {
		return false, err
	}
	a.ocsp.signer.Store(next)
	s.o.Log.Info("OCSP responder certificate", "authority", a.rec.Name, "serial", ca.Serial(next.Cert.SerialNumber),
		"not_after", next.Cert.NotAfter)
	return signer != nil, nil
}

// refreshOCSP re-signs the cached responses past half their validity
// (all of them when the responder was renewed); stale "unknown" answers
// are dropped instead. It renews the responder certificate first when it
// is past half its life. Responses of certificates whose status changed
// were dropped from the cache when the change was seen.
func (s *Service) refreshOCSP(ctx context.Context, a *authority) error {
	if a.rec.Purpose == ca.RootPurpose {
		return nil // authorities carry no OCSP URL: the root's CRL covers them
	}
	renewed, err := s.renewResponder(ctx, a)
	if err != nil {
		return err
	}
	now := s.now()
	todo := s.cache.entries(a, func(_ respKey, r *response) bool {
		return renewed || now.After(r.thisUpdate.Add(s.o.OCSPValidity/2))
	})
	for k, old := range todo {
		if !old.known && !renewed {
			s.cache.remove(cacheKey{a, k}, old)
			continue
		}
		gen, issued := s.cache.generation()
		e, found, err := s.status(a, k.serial)
		if err != nil {
			return err
		}
		var serialBuf serialKey
		r, err := s.sign(a, k, new(big.Int).SetBytes(k.serial.bytes(&serialBuf)), e, found)
		if err != nil {
			return err
		}
		s.cache.put(cacheKey{a, k}, r, gen, issued)
	}
	return nil
}
