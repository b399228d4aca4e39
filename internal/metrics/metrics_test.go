package metrics_test

import (
	"context"
	"log/slog"
	"testing"

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
