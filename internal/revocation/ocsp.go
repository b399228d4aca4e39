package revocation

import (
	"context"
	"crypto"
	"math/big"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ocsp"

	"signet/internal/ca"
)

// respKey names one cached response: the serial and the CertID hash the
// request used (the response must echo it).
type respKey struct {
	hash   crypto.Hash
	serial serialKey
}

// response is a signed OCSP response with its HTTP headers computed once;
// immutable, replaced whole when re-signed.
type response struct {
	der                         []byte
	thisUpdate, nextUpdate      time.Time
	known                       bool // false for "unknown": not refreshed, dropped at refresh
	revoked                     bool
	etag, lastModified, expires []string
}

// ocspState is an authority's responder and its pre-signed responses.
type ocspState struct {
	signer atomic.Pointer[ca.OCSPSigner]

	// mu guards the maps below. It may be held while taking the
	// authority's index lock (respond does), never the other way round.
	mu        sync.RWMutex
	responses map[respKey]*response
	published map[respKey]*response // with Options.Shared, on the leader: what the store has
	unknown   int                   // cached "unknown" responses, bounded by maxUnknown
	signMu    sync.Mutex
}

// maxUnknown bounds the cache of answers for serials never issued, which
// anyone can ask for by the million.
const maxUnknown = 10000

// cached returns the response for k if it is still fresh.
func (o *ocspState) cached(k respKey, now time.Time) *response {
	o.mu.RLock()
	r := o.responses[k]
	o.mu.RUnlock()
	if r == nil || !now.Before(r.nextUpdate) {
		return nil
	}
	return r
}

// requestHashes are the hashes an OCSP request may identify a certificate
// with: SHA-1 (what most clients send) and SHA-256.
var requestHashes = []crypto.Hash{crypto.SHA1, crypto.SHA256}

// forgetUnknown drops the "unknown" answers cached for serial, in every
// hash an OCSP request may name.
func (o *ocspState) forgetUnknown(serial serialKey) {
	o.mu.RLock()
	n := 0
	for _, h := range requestHashes {
		if r := o.responses[respKey{h, serial}]; r != nil && !r.known {
			n++
		}
	}
	o.mu.RUnlock()
	if n == 0 {
		return
	}
	o.mu.Lock()
	for _, h := range requestHashes {
		if r := o.responses[respKey{h, serial}]; r != nil && !r.known {
			delete(o.responses, respKey{h, serial})
			o.unknown--
		}
	}
	o.mu.Unlock()
}

// respond returns the response for k: from the cache, else signed now
// (once: concurrent misses wait for the first) and cached.
func (s *Service) respond(a *authority, k respKey, serial *big.Int) (*response, error) {
	now := s.now()
	if r := a.ocsp.cached(k, now); r != nil {
		return r, nil
	}
	if s.o.Shared != nil && !s.leadingOCSP.Load() || s.o.Published != nil && a.ocsp.signer.Load() == nil {
		return s.respondFollower(a, k) // another node signs, or no responder here yet: what was kept
	}
	a.ocsp.signMu.Lock()
	defer a.ocsp.signMu.Unlock()
	if r := a.ocsp.cached(k, now); r != nil {
		return r, nil
	}
	e, found := a.lookup(k.serial)
	r, err := s.sign(a, k, serial, e, found)
	if err != nil {
		return nil, err
	}
	if testHookSigned != nil {
		testHookSigned()
	}
	a.ocsp.mu.Lock()
	// Cache r only if the index still holds what r was signed from. Had
	// issued or a refresh changed it since, it changed it before taking
	// this lock to drop or re-sign what is cached for the serial, and found
	// nothing yet; r would then say "unknown" for an issued certificate, or
	// "good" for a revoked one, until it ages. Checked under the lock, an
	// unchanged entry means such a change comes later and sees r.
	if cur, ok := a.lookup(k.serial); ok != found || cur != e {
		a.ocsp.mu.Unlock()
		return r, nil
	}
	old := a.ocsp.responses[k]
	switch {
	case r.known:
		a.ocsp.responses[k] = r
	case old != nil && !old.known:
		a.ocsp.responses[k] = r
	case a.ocsp.unknown < maxUnknown:
		a.ocsp.responses[k] = r
		a.ocsp.unknown++
	}
	a.ocsp.mu.Unlock()
	return r, nil
}

// testHookSigned, nil but in tests, runs in respond between signing a
// response and caching it.
var testHookSigned func()

// sign makes the response for k from e, what the in-memory index holds for
// the serial (found false: nothing).
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

// refreshOCSP re-signs the cached responses of serials whose status
// changed, and those past half their validity; stale "unknown" answers are
// dropped instead. It renews the responder certificate first when it is
// past half its life.
func (s *Service) refreshOCSP(ctx context.Context, a *authority, changed map[serialKey]bool) error {
	if a.rec.Purpose == ca.RootPurpose {
		return nil // authorities carry no OCSP URL: the root's CRL covers them
	}
	signer := a.ocsp.signer.Load()
	now := s.now()
	renewed := false
	if signer == nil || now.After(signer.Cert.NotAfter.Add(-s.o.ResponderValidity/2)) {
		next, err := s.o.CA.IssueOCSPResponder(ctx, a.rec.Name, s.o.ResponderValidity, "revocation")
		if err != nil {
			return err
		}
		a.ocsp.signer.Store(next)
		renewed = signer != nil
		s.o.Log.Info("OCSP responder certificate", "authority", a.rec.Name, "serial", ca.Serial(next.Cert.SerialNumber),
			"not_after", next.Cert.NotAfter)
	}
	a.ocsp.mu.RLock()
	var todo []respKey
	for k, r := range a.ocsp.responses {
		if renewed || changed[k.serial] || now.After(r.thisUpdate.Add(s.o.OCSPValidity/2)) {
			todo = append(todo, k)
		}
	}
	a.ocsp.mu.RUnlock()
	for _, k := range todo {
		a.ocsp.mu.RLock()
		old := a.ocsp.responses[k]
		a.ocsp.mu.RUnlock()
		if old != nil && !old.known && !changed[k.serial] && !renewed {
			a.ocsp.mu.Lock()
			delete(a.ocsp.responses, k)
			a.ocsp.unknown--
			a.ocsp.mu.Unlock()
			continue
		}
		var serialBuf serialKey
		e, found := a.lookup(k.serial)
		r, err := s.sign(a, k, new(big.Int).SetBytes(k.serial.bytes(&serialBuf)), e, found)
		if err != nil {
			return err
		}
		a.ocsp.mu.Lock()
		if old != nil && !old.known && r.known {
			a.ocsp.unknown--
		}
		a.ocsp.responses[k] = r
		a.ocsp.mu.Unlock()
	}
	return nil
}
