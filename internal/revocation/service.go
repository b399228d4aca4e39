// Package revocation serves the status of signet's certificates the way
// relying parties check it: sharded CRLs, signed from an in-memory mirror
// of the store's revocations that follows them (at once in this process,
// by polling otherwise), and an OCSP responder that signs a certificate's
// response when first asked, from its status in the store, and keeps
// what it signed in a cache bounded in bytes.
package revocation

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"signet/internal/ca"
	"signet/internal/errs"
	"signet/internal/metrics"
	"signet/internal/profile"
	"signet/internal/store"
)

// Store is the part of the store the revocation services read: the
// authorities and the feed of certificate statuses.
type Store interface {
	Authority(ctx context.Context, name string) (store.Authority, error)
	Authorities(ctx context.Context) ([]store.Authority, error)
	Statuses(ctx context.Context, q store.StatusQuery, fn func(store.CertStatus) error) (head int64, err error)
	CertStatus(ctx context.Context, serial string) (store.CertStatus, error)
	StatusPage(ctx context.Context, q store.StatusPageQuery) ([]store.CertStatus, error)
}

// Options configure a Service. Zero durations take the defaults below.
type Options struct {
	CA    *ca.CA
	Store Store
	Log   *slog.Logger
	Clock func() time.Time

	// Poll is how often the store is asked for revocations made by other
	// processes (this process's are seen at once). Default 2s.
	Poll time.Duration
	// CRLValidity is nextUpdate - thisUpdate; CRLs are re-signed at half
	// of it, and at once when a shard gains a revocation. Default 24h.
	CRLValidity time.Duration
	// OCSPValidity is a response's nextUpdate - thisUpdate; responses are
	// re-signed at half of it. Default 24h.
	OCSPValidity time.Duration
	// ResponderValidity is the delegated responder certificate's life; it
	// is renewed at half of it. Default 4 days.
	ResponderValidity time.Duration
	// Shared, when the store is shared by several nodes, elects the one
	// that signs and carries what it signs to the others (see shared.go).
	// Nil: this node is alone and does every job.
	Shared store.Shared
	// Published, when set, keeps what this node signs for its next start
	// (persist.go); Shared's is taken when nil.
	Published store.Published
	// Metrics counts the OCSP responses served; nil counts nothing.
	Metrics *metrics.OCSP
	// OCSPCacheBytes bounds the memory of the signed OCSP responses kept
	// (respCache). Default DefaultOCSPCacheBytes.
	OCSPCacheBytes int
}

// DefaultOCSPCacheBytes holds about 45,000 responses of a delegated
// responder (its certificate rides in each, about 1.5 kB in all).
const DefaultOCSPCacheBytes = 64 << 20

// Service mirrors the revocations and keeps CRLs and OCSP responses signed.
type Service struct {
	o   Options
	now func() time.Time

	refreshMu   sync.Mutex // one refresh at a time
	seq         int64      // the store head the mirror reflects
	lastPurge   time.Time
	authorities atomic.Pointer[map[string]*authority]

	rawMu sync.RWMutex
	raw   map[string]rawHit // canonical request bytes already answered → what they asked

	cache  *respCache         // signed OCSP responses
	misses singleflight.Group // OCSP misses being signed, by CertID

	kick chan struct{} // refresh now (refreshSoon)

	tried map[string]time.Time // an unavailable authority's last try (mayTry)

	leadingCRL, leadingOCSP atomic.Bool // with Shared: this node's jobs now
	crlVersion              int64       // with Published: the last published CRL loaded
	resumed                 bool        // with Published: the kept CRLs were installed (resume)
}

// rawHit is what a request's bytes name; the response itself is looked up
// in the response cache, so re-signing needs no change here.
type rawHit struct {
	a *authority
	k respKey
}

// maxRaw bounds the request-bytes cache: one entry per certificate and
// CertID hash asked about.
const maxRaw = 100000

var errNoResponder = errs.New(errs.Unavailable, "the OCSP responder has no certificate yet")

// withDefaults returns o with the defaults above in its zero fields.
func (o Options) withDefaults() Options {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.CRLValidity <= 0 {
		o.CRLValidity = 24 * time.Hour
	}
	if o.OCSPValidity <= 0 {
		o.OCSPValidity = 24 * time.Hour
	}
	if o.ResponderValidity <= 0 {
		o.ResponderValidity = 4 * 24 * time.Hour
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Published == nil && o.Shared != nil {
		o.Published = o.Shared
	}
	if o.OCSPCacheBytes <= 0 {
		o.OCSPCacheBytes = DefaultOCSPCacheBytes
	}
	return o
}

// New returns a service; Refresh or Run fill it.
func New(o Options) *Service {
	o = o.withDefaults()
	s := &Service{o: o, now: o.Clock, raw: map[string]rawHit{}, kick: make(chan struct{}, 1), tried: map[string]time.Time{},
		cache: newRespCache(o.OCSPCacheBytes)}
	m := map[string]*authority{}
	s.authorities.Store(&m)
	if o.CA != nil {
		o.CA.OnIssue(s.issued)
		o.CA.OnRevoke(s.revoked)
	}
	return s
}

// issued drops an "unknown" answer cached for a certificate this process
// just recorded, so that OCSP answers "good" for it at once, without
// waiting for a refresh.
func (s *Service) issued(c store.CertStatus) {
	a := (*s.authorities.Load())[c.Authority]
	k, ok := keyOfHex(c.Serial)
	if !ok {
		return
	}
	if a == nil {
		s.refreshSoon() // an authority added since the last refresh
		return
	}
	s.cache.invalidate(a, k, true)
}

// refreshSoon has Run refresh now rather than at its next Poll.
func (s *Service) refreshSoon() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// revoked drops the responses cached for a certificate this process just
// revoked, before the revocation is reported done: from then on OCSP signs
// its "revoked" answer. The refresh that follows (Changed) puts it on the
// CRLs.
func (s *Service) revoked(serial string) {
	k, ok := keyOfHex(serial)
	if !ok {
		return
	}
	for _, a := range *s.authorities.Load() {
		s.cache.invalidate(a, k, false)
	}
}

// Run refreshes until ctx ends: at every revocation this CA makes, and
// every Poll for changes made by other processes. Failures are logged and
// retried.
func (s *Service) Run(ctx context.Context) error {
	tick := time.NewTicker(s.o.Poll)
	defer tick.Stop()
	for {
		changed := s.o.CA.Changed()
		if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
			s.o.Log.Warn("revocation refresh failed; retrying", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-s.kick:
		case <-tick.C:
		}
	}
}

// Refresh brings the mirror up to the store's head, drops the cached OCSP
// responses of certificates that changed, re-signs the CRL shards that
// gained revocations or are half-way to their nextUpdate and the whole
// CRLs that are due (wholeDue), renews responders and re-signs the cached
// OCSP responses that age.
func (s *Service) Refresh(ctx context.Context) error {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	now := s.now()
	auths, err := s.loadAuthorities(ctx)
	if err != nil {
		return err
	}
	dirty := map[*authority]map[int]bool{}
	changed := map[*authority]map[serialKey]bool{}
	// At start only the revocations are read (the CRLs need them); then
	// every change, to drop what OCSP cached for it.
	q := store.StatusQuery{AfterSeq: s.seq, NotAfterAfter: crlCutoff(now, s.o.CRLValidity), RevokedOnly: s.seq == 0}
	head, err := s.o.Store.Statuses(ctx, q, func(c store.CertStatus) error {
		a := auths[c.Authority]
		k, ok := keyOfHex(c.Serial)
		if a == nil || !ok {
			return nil // an authority added since loadAuthorities: the next refresh has it
		}
		if a.put(k, c) {
			if dirty[a] == nil {
				dirty[a] = map[int]bool{}
			}
			dirty[a][c.Shard] = true
		}
		if s.seq > 0 { // at start nothing is cached yet
			s.cache.invalidate(a, k, !c.Revoked)
			if changed[a] == nil {
				changed[a] = map[serialKey]bool{}
			}
			changed[a][k] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.seq = head
	if s.o.Published != nil && !s.resumed {
		if err := s.resume(ctx, auths, dirty); err != nil {
			s.o.Log.Warn("the CRLs kept in the store do not load; signing new ones", "err", err)
		}
		s.resumed = true
	}
	if now.Sub(s.lastPurge) > time.Hour {
		for _, a := range auths {
			a.purge(crlCutoff(now, s.o.CRLValidity))
		}
		s.pruneOCSP(ctx, now)
		s.lastPurge = now
	}
	if s.o.Shared != nil {
		return s.refreshShared(ctx, auths, dirty, changed)
	}
	var errList []error
	var docs []store.RevocationDoc
	for _, a := range auths {
		if !s.mayTry(a.rec.Name, now) {
			continue
		}
		if stale, whole := s.staleShards(a, dirty[a]), s.wholeDue(a, dirty[a]); len(stale) > 0 || whole {
			signed, err := s.signCRLs(ctx, a, stale, whole, nil)
			if err != nil {
				errList = append(errList, errs.Wrap(errs.KindOf(err), err, "CRLs of %s", a.rec.Name))
			}
			docs = slices.AppendSeq(docs, crlDocs(a.rec.Name, signed))
		}
		if err := s.refreshOCSP(ctx, a); err != nil {
			errList = append(errList, errs.Wrap(errs.KindOf(err), err, "OCSP of %s", a.rec.Name))
		}
		if s.o.Published != nil {
			docs = append(docs, s.unpublished(a)...)
		}
	}
	if s.o.Published != nil {
		if err := s.o.Published.PublishRevocation(ctx, docs); err != nil {
			errList = append(errList, errs.Wrap(errs.KindOf(err), err, "keeping the signed CRLs and OCSP responses"))
		}
	}
	return errors.Join(errList...)
}

// loadAuthorities returns the served authorities, adding any new in the
// store. A new authority's certificates are read from the start of the log.
func (s *Service) loadAuthorities(ctx context.Context) (map[string]*authority, error) {
	cur := *s.authorities.Load()
	list, err := s.o.Store.Authorities(ctx)
	if err != nil {
		return nil, err
	}
	var added []*authority
	for _, rec := range list {
		if cur[rec.Name] != nil || profile.Purpose(rec.Purpose).IsSSH() || len(rec.CertDER) == 0 {
			continue // SSH authorities have KRLs, not CRLs
		}
		a, err := newAuthority(rec)
		if err != nil {
			return nil, errs.Wrap(errs.Internal, err, "authority %q", rec.Name)
		}
		added = append(added, a)
	}
	if len(added) == 0 {
		return cur, nil
	}
	next := make(map[string]*authority, len(cur)+len(added))
	for k, v := range cur {
		next[k] = v
	}
	fresh := map[string]*authority{}
	for _, a := range added {
		next[a.rec.Name] = a
		fresh[a.rec.Name] = a
	}
	if s.seq > 0 && len(cur) > 0 {
		// Catch the new authorities up with everything before the head.
		q := store.StatusQuery{NotAfterAfter: crlCutoff(s.now(), s.o.CRLValidity), RevokedOnly: true}
		_, err := s.o.Store.Statuses(ctx, q, func(c store.CertStatus) error {
			if a := fresh[c.Authority]; a != nil {
				if k, ok := keyOfHex(c.Serial); ok {
					a.put(k, c)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	s.authorities.Store(&next)
	return next, nil
}

func (s *Service) authority(name string) *authority { return (*s.authorities.Load())[name] }

// retryUnavailable is how often an authority that cannot sign is tried
// again by the refresh (issuance, signet unlock and SIGHUP try at once).
const retryUnavailable = time.Minute

// mayTry reports whether to sign for an authority now: never while it is
// locked (what it signed before is served until it expires), and once per
// retryUnavailable while it is unavailable. Called under refreshMu.
func (s *Service) mayTry(name string, now time.Time) bool {
	switch s.o.CA.State(name).State {
	case ca.Locked:
		return false
	case ca.Unavailable:
		if now.Sub(s.tried[name]) < retryUnavailable {
			return false
		}
		s.tried[name] = now
	}
	return true
}

func etag(der []byte) string {
	sum := sha256.Sum256(der)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}

// pruneBatch and pruneBatches bound the published OCSP responses one hourly
// prune deletes: a transaction of the writer per batch.
const pruneBatch, pruneBatches = 10000, 50

// pruneOCSP deletes, on the node that publishes OCSP responses, those
// whose nextUpdate passed an hour ago: live certificates' responses are
// re-signed well before, so these are of expired certificates, which would
// otherwise stay in the store for good.
func (s *Service) pruneOCSP(ctx context.Context, now time.Time) {
	if s.o.Published == nil || s.o.Shared != nil && !s.leadingOCSP.Load() {
		return
	}
	var total int64
	for range pruneBatches {
		n, err := s.o.Published.PruneOCSP(ctx, now.Add(-time.Hour), pruneBatch)
		if err != nil {
			s.o.Log.Warn("pruning expired OCSP responses from the store", "err", err)
			return
		}
		if total += n; n < pruneBatch {
			break
		}
	}
	if total > 0 {
		s.o.Log.Info("pruned expired OCSP responses from the store", "count", total)
	}
}
