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
// through the store ("crl", "ocsp"), signs CRLs, holds the OCSP responder
// and pre-signs a response for every live certificate, and publishes them
// in the store; every node serves what was published. A follower never
// signs: an OCSP request it has no fitting published response for is
// answered tryLater (the leader has not caught up yet) or unauthorized (a
// serial this CA never issued). When the leader dies its session ends, its
// locks go with it, and the next node to ask leads from its next refresh.

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
			if err := s.refreshOCSP(ctx, a, changed[a]); err != nil {
				errList = append(errList, errs.Wrap(errs.KindOf(err), err, "OCSP of %s", a.rec.Name))
			} else {
				signed, err := s.presign(a)
				if err != nil {
					errList = append(errList, errs.Wrap(errs.KindOf(err), err, "OCSP of %s", a.rec.Name))
				}
				docs = append(docs, signed...)
			}
		} else {
			s.forget(a, changed[a])
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

// presign signs, on the leader, the responses every live certificate
// lacks (both CertID hashes), and returns the responses not yet published.
func (s *Service) presign(a *authority) ([]store.RevocationDoc, error) {
	if a.rec.Purpose == ca.RootPurpose {
		return nil, nil
	}
	var live []serialKey
	cutoff := unix32(crlCutoff(s.now(), s.o.CRLValidity))
	a.mu.RLock()
	for _, m := range a.shards {
		for k, e := range m {
			if e.notAfter > cutoff {
				live = append(live, k)
			}
		}
	}
	a.mu.RUnlock()
	var out []store.RevocationDoc
	var buf serialKey
	for _, k := range live {
		for h, name := range hashNames {
			rk := respKey{hash: h, serial: k}
			a.ocsp.mu.RLock()
			r, done := a.ocsp.responses[rk], a.ocsp.published[rk]
			a.ocsp.mu.RUnlock()
			if r == nil || !r.known {
				var err error
				if r, err = s.respond(a, rk, new(big.Int).SetBytes(k.bytes(&buf))); err != nil {
					return out, err
				}
			}
			if r == done || !r.known {
				continue
			}
			out = append(out, store.RevocationDoc{Kind: "ocsp", Authority: a.rec.Name, Serial: hexOf(k), Hash: name,
				Revoked: r.revoked, DER: r.der, ThisUpdate: r.thisUpdate, NextUpdate: r.nextUpdate})
			a.ocsp.mu.Lock()
			a.ocsp.published[rk] = r
			a.ocsp.mu.Unlock()
		}
	}
	return out, nil
}

// forget drops, on a follower, cached responses whose certificate changed
// or that are half-way to their nextUpdate: the next request fetches what
// the leader published since.
func (s *Service) forget(a *authority, changed map[serialKey]bool) {
	now := s.now()
	a.ocsp.mu.Lock()
	defer a.ocsp.mu.Unlock()
	for k, r := range a.ocsp.responses {
		if changed[k.serial] || now.After(r.thisUpdate.Add(s.o.OCSPValidity/2)) {
			delete(a.ocsp.responses, k)
		}
	}
}

// respondFollower answers from the leader's published response, if it
// states what this node's mirror knows of the certificate.
func (s *Service) respondFollower(a *authority, k respKey) (*response, error) {
	e, ok := a.lookup(k.serial)
	if !ok || e.notAfter <= unix32(crlCutoff(s.now(), s.o.CRLValidity)) {
		return nil, errNotIssued
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := s.o.Published.PublishedOCSP(ctx, a.rec.Name, hashNames[k.hash], hexOf(k.serial))
	now := s.now()
	if err != nil || d.Revoked != e.revoked || !now.Before(d.NextUpdate) {
		if err != nil && errs.KindOf(err) != errs.NotFound {
			s.o.Log.Warn("published OCSP response", "authority", a.rec.Name, "err", err)
		}
		return nil, errNoResponder // tryLater: the leader will publish it
	}
	r := &response{der: d.DER, thisUpdate: d.ThisUpdate, nextUpdate: d.NextUpdate, known: true, revoked: d.Revoked,
		etag: []string{etag(d.DER)}, lastModified: []string{d.ThisUpdate.UTC().Format(http.TimeFormat)},
		expires: []string{d.NextUpdate.UTC().Format(http.TimeFormat)}}
	a.ocsp.mu.Lock()
	a.ocsp.responses[k] = r
	a.ocsp.mu.Unlock()
	return r, nil
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
