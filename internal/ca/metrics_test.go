package ca_test

import (
	"context"
	"crypto"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"signet/internal/ca"
	"signet/internal/errs"
	"signet/internal/metrics"
)

// goneKeys cannot open any key, like a token that was pulled out.
type goneKeys struct{ *countingKeys }

func (goneKeys) Signer(ctx context.Context, uri string) (crypto.Signer, error) {
	return nil, errs.New(errs.NotFound, "no token here")
}

// scrapeKeyMetrics serves reg's /metrics and returns the signature count
// and the key errors of software keys for op, as a scrape reads them.
func scrapeKeyMetrics(t *testing.T, reg *metrics.Registry, outcome, op string) (signatures, keyErrors float64) {
	t.Helper()
	srv := httptest.NewServer(reg.Handler(slog.Default()))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range fams["signet_signing_duration_seconds"].GetMetric() {
		if label(m.GetLabel(), "backend") == "software" && label(m.GetLabel(), "outcome") == outcome {
			signatures += float64(m.GetHistogram().GetSampleCount())
		}
	}
	for _, m := range fams["signet_key_errors_total"].GetMetric() {
		if label(m.GetLabel(), "backend") == "software" && label(m.GetLabel(), "op") == op {
			keyErrors += m.GetCounter().GetValue()
		}
	}
	return signatures, keyErrors
}

func label(ls []*dto.LabelPair, name string) string {
	for _, l := range ls {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
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
	if failed, signErrs := scrapeKeyMetrics(t, reg, "error", "sign"); failed != 1 || signErrs != 1 {
		t.Errorf("a faulty signature: %v failed signatures and %v sign errors, want 1 and 1", failed, signErrs)
	}
	if ok, _ := scrapeKeyMetrics(t, reg, "ok", "sign"); ok != 0 {
		t.Errorf("a faulty signature was counted as %v good ones", ok)
	}

	gone := ca.New(ca.Options{Store: f.store, Keys: goneKeys{f.keys}, Lint: lintGate(t), Clock: func() time.Time { return f.now }})
	gone.Observe(reg)
	if _, err := gone.Issue(ctx, ca.Request{Authority: "web", PublicKey: newKey(t).Public(), DNSNames: []string{"a.example.org"}, Actor: "test"}); err == nil {
		t.Fatal("issued without a key")
	}
	if _, openErrs := scrapeKeyMetrics(t, reg, "ok", "open"); openErrs != 1 {
		t.Errorf("a key that cannot be opened: %v open errors, want 1", openErrs)
	}
}
