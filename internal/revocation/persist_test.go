package revocation

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"io"
	"log/slog"
	"maps"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"signet/internal/ca"
	"signet/internal/store"
)

// TestRestartServesKeptDocuments: with a store that keeps what is signed
// (SQLite here), a restarted service serves the CRLs the previous one
// signed, CRL numbers unchanged, and re-signs only the shard (and the
// whole CRL) that gained a revocation while it was down; the OCSP
// responses it signed are kept too.
func TestRestartServesKeptDocuments(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	kept := f.store.(store.Published)
	start := func() *Service {
		t.Helper()
		svc := New(Options{CA: f.ca, Store: f.store, Clock: f.clock, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Published: kept})
		if err := svc.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		return svc
	}
	numbers := func(svc *Service) map[int]int64 {
		t.Helper()
		out := map[int]int64{}
		a := svc.authority("web")
		for sh := ca.WholeCRL; sh < 16; sh++ {
			l, err := x509.ParseRevocationList(a.crl.get(sh).DER)
			if err != nil {
				t.Fatal(err)
			}
			out[sh] = l.Number.Int64()
		}
		return out
	}
	c1, c2 := f.issue(t, 0), f.issue(t, 0)
	for c2.CRLDistributionPoints[0] == c1.CRLDistributionPoints[0] {
		c2 = f.issue(t, 0)
	}
	if _, err := f.ca.Revoke(ctx, ca.Serial(c1.SerialNumber), 1, "test"); err != nil {
		t.Fatal(err)
	}

	first := start()
	srv := httptest.NewServer(first.Handler())
	defer srv.Close()
	f.srv = srv
	if _, der := f.post(t, ocspRequest(t, c1, f.issuer, crypto.SHA1)); der == nil {
		t.Fatal("no OCSP response")
	}
	if err := first.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	d, err := kept.PublishedOCSP(ctx, "web", "sha1", ca.Serial(c1.SerialNumber))
	if r, perr := ocsp.ParseResponseForCert(d.DER, c1, f.issuer); err != nil || perr != nil || !d.Revoked || r.Status != ocsp.Revoked {
		t.Errorf("kept OCSP response of the revoked certificate: %+v, %v, %v", d, err, perr)
	}
	signed := numbers(first)

	// A restarted node without a responder of its own yet (its CA key
	// locked, say) answers from the kept responses.
	second := start()
	a := second.authority("web")
	a.ocsp.signer.Store(nil)
	second.cache = newRespCache(DefaultOCSPCacheBytes)
	f.srv = httptest.NewServer(second.Handler())
	defer f.srv.Close()
	if _, der := f.post(t, ocspRequest(t, c1, f.issuer, crypto.SHA1)); !bytes.Equal(der, d.DER) {
		t.Errorf("with no responder, the OCSP answer is not the kept response")
	}

	if got := numbers(start()); !maps.Equal(got, signed) {
		t.Errorf("a restart signed CRLs anew: numbers %v, the kept ones %v", got, signed)
	}

	// A revocation while no server runs: the restart re-signs its shard
	// and the whole CRL, and serves the other shards as kept.
	if _, err := f.ca.Revoke(ctx, ca.Serial(c2.SerialNumber), 1, "test"); err != nil {
		t.Fatal(err)
	}
	f.advance(WholeCRLInterval + 2*time.Second) // whole CRLs are re-signed at most once in that interval
	third := numbers(start())
	shard := ca.ShardOf(c2.SerialNumber, 16)
	for sh, n := range third {
		if changed := n != signed[sh]; changed != (sh == shard || sh == ca.WholeCRL) {
			t.Errorf("shard %d: CRL number %d after the restart, %d before (shard revoked in: %d)", sh, n, signed[sh], shard)
		}
	}
}

// TestPruneExpiredOCSP: the service that publishes OCSP responses deletes,
// at its hourly purge, the kept responses whose nextUpdate passed more
// than an hour ago, and keeps those still valid.
func TestPruneExpiredOCSP(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	kept := f.store.(store.Published)
	now := f.clock()
	doc := func(serial string, next time.Time) store.RevocationDoc {
		return store.RevocationDoc{Kind: "ocsp", Authority: "web", Hash: "sha256", Serial: serial, DER: []byte(serial),
			ThisUpdate: next.Add(-4 * 24 * time.Hour), NextUpdate: next}
	}
	if err := kept.PublishRevocation(ctx, []store.RevocationDoc{doc("0e01", now.Add(-2*time.Hour)), doc("0e02", now.Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}
	svc := New(Options{CA: f.ca, Store: f.store, Clock: f.clock, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Published: kept})
	if err := svc.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := kept.PublishedOCSP(ctx, "web", "sha256", "0e01"); err == nil {
		t.Error("an OCSP response two hours past its nextUpdate is still kept")
	}
	if _, err := kept.PublishedOCSP(ctx, "web", "sha256", "0e02"); err != nil {
		t.Errorf("an OCSP response still valid was pruned: %v", err)
	}
}
