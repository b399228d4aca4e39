package revocation

import (
	"context"
	"crypto"
	"encoding/hex"
	"errors"
	"math/big"
	"net/http"
	"slices"
	"time"

	"signet/internal/ca"
	"signet/internal/errs"
	"signet/internal/store"
)

// Several nodes on one store (Options.Shared): one node, elected per job
// through the store ("crl", "ocsp"), signs CRLs, pre-signs OCSP responses
// for the live certificates in bounded batches (presign), and publishes
// them in the store; every node serves what was published. A follower
// signs no CRL. Asked about a certificate the leader has published no
// fitting response for (its walk has not reached it, or the status
// changed since), a follower signs the response itself from the status in
// the store, exactly as the leader signs a miss, with a delegated
// responder of its own: issued through the issuance path at its first
// such miss (the refresh that miss triggers issues it; until then misses
// are answered tryLater) and renewed at half its life like the leader's.
// What a follower signs stays in its own bounded cache and is never
// published, so the store's rows have one writer, the leader, and a
// follower's response signed from a status read just before a revocation
// cannot overwrite the leader's "revoked". A serial this CA never issued
// (or one past the CRLs' cutoff) is signed "unknown" as the leader signs
// it, or answered unauthorized by a follower with no responder yet; a
// node whose authority is locked signs nothing (tryLater). When the leader dies its session ends, its locks go
// with it, and the next node to ask leads from its next refresh.

// Jobs elected through store.Shared.Lead.
const (
	JobCRL  = "crl"
	JobOCSP = "ocsp"
)

var errNotIssued = errs.New(errs.NotFound, "no such certificate")

var hashNames = map[crypto.Hash]string{crypto.SHA1: "sha1", crypto.SHA256: "sha256"}

// refreshShared is Refresh's second half on a shared store: lead or follow
// each job, then install the CRLs other nodes published.
func (s *Service) refreshShared(ctx context.Context, auths map[string]*authority, dirty map[*authority]map[int]bool,
	changed map[*authority]map[serialKey]bool) error {
	sh := s.o.Shared
	var errList []error
	leadCRL, err := sh.Lead(ctx, JobCRL)
	if err != nil {
		errList = append(errList, err)
	}
	leadOCSP, err := sh.Lead(ctx, JobOCSP)
	if err != nil {
		errList = append(errList, err)
	}
	if leadOCSP != s.leadingOCSP.Load() || leadCRL != s.leadingCRL.Load() {
		s.o.Log.Info("revocation jobs", "crl_leader", leadCRL, "ocsp_leader", leadOCSP)
	}
	s.leadingCRL.Store(leadCRL)
	s.leadingOCSP.Store(leadOCSP)
	var docs []store.RevocationDoc
	for _, a := range auths {
		whole := s.wholeDue(a, dirty[a])         // on followers too: a new leader re-signs what it saw revoked
		locked := !s.mayTry(a.rec.Name, s.now()) // signs nothing: what was published is served
		if leadCRL && !locked {
			if stale := s.staleShards(a, dirty[a]); len(stale) > 0 || whole {
				signed, err := s.signCRLs(ctx, a, stale, whole, nil)
				if err != nil {
					errList = append(errList, errs.Wrap(errs.KindOf(err), err, "CRLs of %s", a.rec.Name))
				}
				docs = slices.AppendSeq(docs, crlDocs(a.rec.Name, signed))
			}
		}
		if leadOCSP && !locked {
			if err := s.refreshOCSP(ctx, a); err != nil {
				errList = append(errList, errs.Wrap(errs.KindOf(err), err, "OCSP of %s", a.rec.Name))
			} else {
				signed, err := s.presign(ctx, a, changed[a])
				if err != nil {
					errList = append(errList, errs.Wrap(errs.KindOf(err), err, "OCSP of %s", a.rec.Name))
				}
				docs = append(docs, signed...)
			}
		} else {
			s.forget(a)
			if !locked && a.rec.Purpose != ca.RootPurpose && (a.ocsp.signer.Load() != nil || a.ocsp.missed.Load()) {
				if _, err := s.renewResponder(ctx, a); err != nil {
					errList = append(errList, errs.Wrap(errs.KindOf(err), err, "OCSP responder of %s", a.rec.Name))
				}
			}
		}
	}
	if err := sh.PublishRevocation(ctx, docs); err != nil {
		errList = append(errList, err)
	}
	if err := s.loadPublishedCRLs(ctx, auths); err != nil {
		errList = append(errList, err)
	}
	return errors.Join(errList...)
}

// presignBatch is how many live certificates the leader pre-signs (both
// CertID hashes) per refresh as it walks its authority's inventory: at
// the default Poll of 2s, ten million certificates take under three hours,
// well within half the default OCSPValidity at which a walk starts over.
var presignBatch = 2000 // a variable for tests

// walk is the leader's progress through an authority's certificates.
// Refresh alone reads and writes it (under refreshMu).
type walk struct {
	after string    // the last serial pre-signed; "" at the start of a pass
	start time.Time // when the current pass started
}

// presign signs, on the leader, the responses followers serve from the
// store: both CertID hashes of each certificate that changed since the
// last refresh, and of the next presignBatch live certificates of the
// authority in serial order; a pass over the whole inventory starts at
// most every OCSPValidity/4, so that every response published is
// re-signed well before its nextUpdate. It returns what to publish: those,
// and what this node signed when asked since the last refresh.
func (s *Service) presign(ctx context.Context, a *authority, changed map[serialKey]bool) ([]store.RevocationDoc, error) {
	if a.rec.Purpose == ca.RootPurpose {
		return nil, nil
	}
	now := s.now()
	cutoff := crlCutoff(now, s.o.CRLValidity)
	var todo []store.CertStatus
	for k := range changed {
		c, err := s.o.Store.CertStatus(ctx, hexOf(k))
		if err != nil {
			if errs.KindOf(err) == errs.NotFound {
				continue
			}
			return nil, err
		}
		todo = append(todo, c)
	}
	w := &a.ocsp.walk
	var fresh map[string]bool // of the walk's page: published and fresh in the store
	if w.after != "" || now.Sub(w.start) >= s.o.OCSPValidity/4 {
		if w.after == "" {
			w.start = now
		}
		page, err := s.o.Store.StatusPage(ctx, store.StatusPageQuery{Authority: a.rec.Name, AfterSerial: w.after, NotAfterAfter: cutoff, Limit: presignBatch})
		if err != nil {
			return nil, err
		}
		// What another leader, or this node before a restart, published
		// and is still fresh is not signed again.
		if len(page) > 0 {
			fresh, err = s.o.Published.FreshOCSP(ctx, a.rec.Name, w.after, page[len(page)-1].Serial, now.Add(-s.o.OCSPValidity/2))
			if err != nil {
				return nil, err
			}
		}
		w.after = ""
		if len(page) == presignBatch {
			w.after = page[len(page)-1].Serial
		}
		todo = append(todo, page...)
	}
	out := s.unpublished(a)
	for _, c := range todo {
		k, ok := keyOfHex(c.Serial)
		if !ok || c.Authority != a.rec.Name {
			continue
		}
		if revoked, ok := fresh[c.Serial]; ok && revoked == c.Revoked && !changed[k] {
			continue
		}
		for h, name := range hashNames {
			rk := respKey{hash: h, serial: k}
			if r := s.cache.get(cacheKey{a, rk}); r != nil && r.published.Load() && !changed[k] &&
				!now.After(r.thisUpdate.Add(s.o.OCSPValidity/2)) {
				continue // published, and fresh
			}
			var buf serialKey
			r, err := s.sign(a, rk, new(big.Int).SetBytes(k.bytes(&buf)), entryOf(c), true)
			if err != nil {
				return out, err
			}
			if changed[k] {
				s.cache.set(cacheKey{a, rk}, r) // asked for soon, likely; the walk's are not
			}
			r.published.Store(true)
			out = append(out, store.RevocationDoc{Kind: "ocsp", Authority: a.rec.Name, Serial: hexOf(k), Hash: name,
				Revoked: r.revoked, DER: r.der, ThisUpdate: r.thisUpdate, NextUpdate: r.nextUpdate})
		}
	}
	return out, nil
}

// forget drops, on a follower, cached responses that are half-way to
// their nextUpdate: the next request fetches what the leader published
// since. (Those of certificates that changed were dropped when the
// change was seen.)
func (s *Service) forget(a *authority) {
	now := s.now()
	aged := s.cache.entries(a, func(_ respKey, r *response) bool { return now.After(r.thisUpdate.Add(s.o.OCSPValidity / 2)) })
	for k, r := range aged {
		s.cache.remove(cacheKey{a, k}, r)
	}
}

// live says whether a certificate the store holds (found) as e is still
// answered for: not past the CRLs' cutoff.
func (s *Service) live(e entry, found bool) bool {
	return found && e.notAfter > unix32(crlCutoff(s.now(), s.o.CRLValidity))
}

// published returns the response for k published in the store if it
// states e (what the store holds of the certificate) and is fresh; nil
// otherwise.
func (s *Service) published(a *authority, k respKey, e entry) *response {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := s.o.Published.PublishedOCSP(ctx, a.rec.Name, hashNames[k.hash], hexOf(k.serial))
	if err != nil || d.Revoked != e.revoked || !s.now().Before(d.NextUpdate) {
		if err != nil && errs.KindOf(err) != errs.NotFound {
			s.o.Log.Warn("published OCSP response", "authority", a.rec.Name, "err", err)
		}
		return nil
	}
	r := &response{der: d.DER, thisUpdate: d.ThisUpdate, nextUpdate: d.NextUpdate, known: true, revoked: d.Revoked,
		etag: []string{etag(d.DER)}, lastModified: []string{d.ThisUpdate.UTC().Format(http.TimeFormat)},
		expires: []string{d.NextUpdate.UTC().Format(http.TimeFormat)}}
	r.published.Store(true)
	return r
}

// loadPublishedCRLs installs the CRLs published since the last call.
func (s *Service) loadPublishedCRLs(ctx context.Context, auths map[string]*authority) error {
	v, err := s.o.Published.PublishedCRLs(ctx, s.crlVersion, func(d store.RevocationDoc) error {
		a := auths[d.Authority]
		if a == nil {
			return nil
		}
		a.crl.install(max(a.rec.Shards, 1), true, ca.SignedCRL{Authority: d.Authority, Shard: d.Shard, DER: d.DER,
			ThisUpdate: d.ThisUpdate, NextUpdate: d.NextUpdate})
		return nil
	})
	if err != nil {
		return err
	}
	s.crlVersion = v
	return nil
}

// hexOf is the serial as ca.Serial writes it: lower-case hex of its octets
// without leading zero octets.
func hexOf(k serialKey) string {
	var buf serialKey
	return hex.EncodeToString(k.bytes(&buf))
}
