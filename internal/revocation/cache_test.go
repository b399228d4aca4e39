package revocation

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"io"
	"log/slog"
	"math/big"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"signet/internal/audit"
	"signet/internal/ca"
	"signet/internal/store"
)

// TestOCSPCacheBounded: with a cache budget of a few responses, OCSP
// answers every certificate of a larger inventory correctly, and the
// responses it keeps stay within the budget in bytes.
func TestOCSPCacheBounded(t *testing.T) {
	f := newFixture(t)
	const budget = 16 << 10
	f.svc = New(Options{CA: f.ca, Store: f.store, Clock: f.clock, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OCSPCacheBytes: budget})
	if err := f.svc.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(f.svc.Handler())
	t.Cleanup(f.srv.Close)
	for i := range 40 {
		c := f.issue(t, 0)
		for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
			_, der := f.post(t, ocspRequest(t, c, f.issuer, h))
			if r, err := ocsp.ParseResponseForCert(der, c, f.issuer); err != nil || r.Status != ocsp.Good {
				t.Fatalf("certificate %d, %v: %v, %v", i, h, statusOf(r), err)
			}
		}
		n, bytes := f.svc.cache.size()
		if bytes > budget+2<<10 { // at most one response past it, while a generation turns
			t.Fatalf("after %d certificates: %d responses of %d bytes cached, budget %d", i+1, n, bytes, budget)
		}
	}
	if n, _ := f.svc.cache.size(); n >= 80 {
		t.Errorf("all %d responses are cached within a budget of %d bytes", n, budget)
	}
}

// TestRevokeDropsCachedGood: a revocation made by this process changes
// the OCSP answer as soon as Revoke returns, though the cache held a
// "good" response and no refresh has run.
func TestRevokeDropsCachedGood(t *testing.T) {
	f := newFixture(t)
	c := f.issue(t, 0)
	req := ocspRequest(t, c, f.issuer, crypto.SHA1)
	for range 2 { // the second is a cache hit
		if _, der := f.post(t, req); !isStatus(t, der, c, f, ocsp.Good) {
			t.Fatal("before revocation: not good")
		}
	}
	if _, err := f.ca.Revoke(context.Background(), ca.Serial(c.SerialNumber), 1, "test"); err != nil {
		t.Fatal(err)
	}
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
		if _, der := f.post(t, ocspRequest(t, c, f.issuer, h)); !isStatus(t, der, c, f, ocsp.Revoked) {
			t.Errorf("%v right after Revoke: not revoked", h)
		}
	}
}

// TestOCSPReadsTheStore: a certificate recorded by another process, whose
// issuance this one was not told of and has not polled yet, is answered
// "good" from the store.
func TestOCSPReadsTheStore(t *testing.T) {
	f := newFixture(t)
	c := *f.issue(t, 0)
	c.SerialNumber = big.NewInt(0x5eed)
	err := f.store.RecordCertificate(context.Background(), store.Certificate{Serial: ca.Serial(c.SerialNumber), Authority: "web",
		Subject: "CN=elsewhere", NotBefore: c.NotBefore, NotAfter: c.NotAfter, Status: store.Valid, Requester: "test", DER: c.Raw},
		audit.Event{Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, der := f.post(t, ocspRequest(t, &c, f.issuer, crypto.SHA256)); !isStatus(t, der, &c, f, ocsp.Good) {
		t.Error("a certificate recorded elsewhere: not good before a refresh")
	}
}

func isStatus(t *testing.T, der []byte, c *x509.Certificate, f *fixture, want int) bool {
	t.Helper()
	r, err := ocsp.ParseResponseForCert(der, c, f.issuer)
	if err != nil {
		t.Logf("OCSP response: %v", err)
		return false
	}
	return r.Status == want
}

// TestCRLSerialsReadsInPlace: ca.CRLSerials, which resuming the kept CRLs
// uses instead of x509.ParseRevocationList, yields the serials the parser
// finds and refuses a CRL whose signature is not the authority's.
func TestCRLSerialsReadsInPlace(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for range 3 {
		c := f.issue(t, 0)
		if _, err := f.ca.Revoke(ctx, ca.Serial(c.SerialNumber), 1, "test"); err != nil {
			t.Fatal(err)
		}
	}
	f.advance(WholeCRLInterval + 2*time.Second)
	if err := f.svc.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	der := f.svc.authority("web").crl.get(ca.WholeCRL).DER
	l, err := x509.ParseRevocationList(der)
	if err != nil || len(l.RevokedCertificateEntries) != 3 {
		t.Fatalf("whole CRL: %v, %v", l, err)
	}
	var got []string
	if err := ca.CRLSerials(der, f.issuer, func(s []byte) { got = append(got, string(s)) }); err != nil {
		t.Fatal(err)
	}
	for i, e := range l.RevokedCertificateEntries {
		if i >= len(got) || got[i] != string(e.SerialNumber.Bytes()) {
			t.Fatalf("serials %x, the parser's entry %d is %x", got, i, e.SerialNumber.Bytes())
		}
	}
	tampered := bytes.Clone(der)
	tampered[len(tampered)-5] ^= 1 // in the signature
	if err := ca.CRLSerials(tampered, f.issuer, func([]byte) {}); err == nil {
		t.Error("a CRL with a broken signature is accepted")
	}
	root := mustAuthority(t, f.store, "root")
	rootCert, _ := x509.ParseCertificate(root.CertDER)
	if err := ca.CRLSerials(der, rootCert, func([]byte) {}); err == nil {
		t.Error("a CRL is accepted as the root's")
	}
}

// TestConcurrentMissesSignOnce: requests arriving together for a serial
// not in the cache share one signature instead of each signing (a flood
// for one cold serial costs one signature, not one per request).
func TestConcurrentMissesSignOnce(t *testing.T) {
	f := newFixture(t)
	c := f.issue(t, 0)
	req := ocspRequest(t, c, f.issuer, crypto.SHA256)
	var signed atomic.Int32
	t.Cleanup(func() { testHookSigned = nil })
	testHookSigned = func() {
		signed.Add(1)
		time.Sleep(50 * time.Millisecond) // the others arrive while this one signs
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			resp, body := f.svc.Lookup(req)
			if resp == nil {
				t.Errorf("lookup: error response %x", body)
			}
		})
	}
	wg.Wait()
	if n := signed.Load(); n != 1 {
		t.Fatalf("8 concurrent requests for one cold serial signed %d responses, want 1", n)
	}
}
