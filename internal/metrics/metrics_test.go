package metrics_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"signet/internal/home"
	"signet/internal/metrics"
	"signet/internal/metrics/metricstest"
)

// TestStoreGaugesOnTheLeaderOnly: the store's gauges are exported by the
// node that signs CRLs, so that a sum over the nodes counts each
// certificate once; the others export none of them.
func TestStoreGaugesOnTheLeaderOnly(t *testing.T) {
	ctx := context.Background()
	h, _, err := home.Init(ctx, t.TempDir(), home.InitOptions{Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	// No CRL is signed by home.Init: the CRL gauges are checked by
	// cmd/signet's TestMetrics.
	gauges := []string{"signet_authority_state", "signet_certificates", "signet_certificates_expiring", "signet_acme_orders", "signet_audit_head_seq"}
	for _, leads := range []bool{true, false} {
		reg := metrics.New()
		reg.Store(h.CA, h.Store, func(context.Context) (bool, error) { return leads, nil }, slog.New(slog.DiscardHandler))
		got := metricstest.Scrape(t, reg)
		for _, name := range gauges {
			if (got[name] != nil) != leads {
				t.Errorf("leading %v: %s exported: %v", leads, name, got[name] != nil)
			}
		}
	}
}

// TestHotPathsDoNotAllocate: counting a successful ACME request, an OCSP
// response, a signature and a commit uses children resolved before, with
// no allocation per event.
func TestHotPathsDoNotAllocate(t *testing.T) {
	reg := metrics.New()
	endpoint := reg.ACME().Endpoint("POST /acme/{auth}/new-order")
	ocsp := reg.OCSP()
	reg.Signature("pkcs11", "ca", time.Millisecond, nil) // the key's first signature resolves its children
	for name, f := range map[string]func(){
		"ACME request": endpoint.Answered,
		"validation":   func() { reg.ACME().Validation("http-01", true, "") },
		"OCSP":         func() { ocsp.Response("good", true) },
		"signature":    func() { reg.Signature("pkcs11", "ca", time.Millisecond, nil) },
		"commit":       func() { reg.Commit(8, time.Millisecond, nil) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("counting a %s allocates %v times", name, n)
		}
	}
}
