package ca_test

import (
	"context"
	"crypto"
	"testing"
	"time"

	"signet/internal/ca"
	"signet/internal/errs"
	"signet/internal/metrics"
	"signet/internal/metrics/metricstest"
)

// goneKeys cannot open any key, like a token that was pulled out.
type goneKeys struct{ *countingKeys }

func (goneKeys) Signer(ctx context.Context, uri string) (crypto.Signer, error) {
	return nil, errs.New(errs.NotFound, "no token here")
}

// TestKeyErrorMetrics: a key that returns an invalid signature is counted
// as a failed signature and a sign error; one that cannot be opened as an
// open error. Neither is counted as a signature that succeeded.
func TestKeyErrorMetrics(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	reg := metrics.New()
	faulty := ca.New(ca.Options{Store: f.store, Keys: faultyKeys{f.keys}, Lint: lintGate(t), Clock: func() time.Time { return f.now }})
	faulty.Observe(reg)
	req := ca.CRLRequest{Authority: "web", Validity: time.Hour, Shards: []ca.CRLShard{{Shard: 0, Entries: entries()}}}
	if _, err := faulty.SignCRLs(ctx, req); err == nil {
		t.Fatal("a faulty key's CRL was accepted")
	}
	sw := func(k, v string) map[string]string {
		return map[string]string{"backend": "software", "token": "", k: v}
	}
	m := metricstest.Scrape(t, reg)
	if failed, signErrs := metricstest.Sum(m, "signet_signing_duration_seconds", sw("outcome", "error")), metricstest.Sum(m, "signet_key_errors_total", sw("op", "sign")); failed != 1 || signErrs != 1 {
		t.Errorf("a faulty signature: %v failed signatures and %v sign errors, want 1 and 1", failed, signErrs)
	}
	if ok := metricstest.Sum(m, "signet_signing_duration_seconds", sw("outcome", "ok")); ok != 0 {
		t.Errorf("a faulty signature was counted as %v good ones", ok)
	}

	gone := ca.New(ca.Options{Store: f.store, Keys: goneKeys{f.keys}, Lint: lintGate(t), Clock: func() time.Time { return f.now }})
	gone.Observe(reg)
	if _, err := gone.Issue(ctx, ca.Request{Authority: "web", PublicKey: newKey(t).Public(), DNSNames: []string{"a.example.org"}, Actor: "test"}); err == nil {
		t.Fatal("issued without a key")
	}
	if n := metricstest.Sum(metricstest.Scrape(t, reg), "signet_key_errors_total", sw("op", "open")); n != 1 {
		t.Errorf("a key that cannot be opened: %v open errors, want 1", n)
	}
}
