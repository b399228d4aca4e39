package revocation

import (
	"context"
	"iter"
	"time"

	"signet/internal/ca"
	"signet/internal/store"
)

// With Options.Published, the CRLs and OCSP responses this node signs are
// kept in the store, and a restarted server serves the last ones before
// it signs anything: at the first refresh, the kept CRLs are installed
// and a shard is re-signed only if its CRL no longer lists exactly what
// the store holds revoked (or is due anyway); OCSP requests the node
// cannot sign for (no responder yet) are answered from the kept
// responses until their nextUpdate, then tryLater.

// resume installs the kept CRLs at the first refresh; a shard is dirty
// unless its kept CRL, signed by the authority's current key, lists
// exactly its revocations, and a whole CRL that does not is marked stale.
func (s *Service) resume(ctx context.Context, auths map[string]*authority, dirty map[*authority]map[int]bool) error {
	if err := s.loadPublishedCRLs(ctx, auths); err != nil {
		return err
	}
	cutoff := crlCutoff(s.now(), s.o.CRLValidity)
	for _, a := range auths {
		for sh := range max(a.rec.Shards, 1) {
			switch d := a.crl.get(sh); {
			case d == nil: // none kept: signed as stale
			case a.lists(d, cutoff, sh):
				delete(dirty[a], sh)
			case dirty[a] == nil:
				dirty[a] = map[int]bool{sh: true}
			default:
				dirty[a][sh] = true
			}
		}
		if len(dirty[a]) == 0 {
			delete(dirty, a)
		}
		if d := a.crl.get(ca.WholeCRL); d != nil && !a.lists(d, cutoff, -1) {
			a.crl.wholeStale = true
		}
	}
	return nil
}

// lists reports whether d, signed by a, lists exactly the revoked
// certificates of shard (every shard: -1) that expire after cutoff. It
// reads the CRL in place (ca.CRLSerials) and looks each serial up in the
// mirror, so that resuming a whole CRL of a million entries costs no
// more memory than the CRL itself.
func (a *authority) lists(d *crlDoc, cutoff time.Time, shard int) bool {
	c := unix32(cutoff)
	a.mu.RLock()
	defer a.mu.RUnlock()
	maps := a.shards
	if shard >= 0 {
		if shard >= len(a.shards) {
			return false
		}
		maps = a.shards[shard : shard+1]
	}
	want := 0
	for _, m := range maps {
		for _, e := range m {
			if e.revoked && e.notAfter > c {
				want++
			}
		}
	}
	listed, ok := 0, true
	err := ca.CRLSerials(d.DER, a.cert, func(serial []byte) {
		var k serialKey
		if len(serial) > len(k) {
			ok = false
			return
		}
		copy(k[len(k)-len(serial):], serial)
		found := false
		for _, m := range maps {
			if e, in := m[k]; in && e.revoked && e.notAfter > c {
				found = true
				break
			}
		}
		ok = ok && found
		listed++
	})
	return err == nil && ok && listed == want
}

// crlDocs are signed CRLs as the store keeps them.
func crlDocs(authority string, signed []ca.SignedCRL) iter.Seq[store.RevocationDoc] {
	return func(yield func(store.RevocationDoc) bool) {
		for _, c := range signed {
			if !yield(store.RevocationDoc{Kind: "crl", Authority: authority, Shard: c.Shard, DER: c.DER,
				ThisUpdate: c.ThisUpdate, NextUpdate: c.NextUpdate}) {
				return
			}
		}
	}
}

// unpublished returns the known OCSP responses of a signed since they were
// last kept (of those still cached), and counts them as kept.
func (s *Service) unpublished(a *authority) []store.RevocationDoc {
	var out []store.RevocationDoc
	for k, r := range s.cache.entries(a, func(_ respKey, r *response) bool { return r.known && !r.published.Load() }) {
		if !r.published.CompareAndSwap(false, true) {
			continue
		}
		out = append(out, store.RevocationDoc{Kind: "ocsp", Authority: a.rec.Name, Serial: hexOf(k.serial), Hash: hashNames[k.hash],
			Revoked: r.revoked, DER: r.der, ThisUpdate: r.thisUpdate, NextUpdate: r.nextUpdate})
	}
	return out
}
