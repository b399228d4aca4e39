package load_test

import (
	"context"
	"crypto/x509"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"signet/internal/acme/load"
	"signet/internal/acme/va"
	"signet/internal/acme/wfe"
	"signet/internal/home"
	"signet/internal/server"
)

// inProcess runs the ACME server over a fresh home (durable SQLite) in
// this process, for the generator's test and benchmark.
func inProcess(tb testing.TB) (load.Config, *load.Responders) {
	ctx := context.Background()
	h, _, err := home.Init(ctx, tb.TempDir(), home.InitOptions{Actor: "test"})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close() })
	resp, err := load.StartResponders()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(resp.Close)
	_, p, _ := net.SplitHostPort(resp.HTTPAddr)
	port, _ := strconv.Atoi(p)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	w, err := wfe.New(ctx, wfe.Options{CA: h.CA, Store: h.Store, Log: log,
		VA: va.New(va.Options{Resolver: resp.DNSAddr, HTTPPort: port, TLSPort: 1})})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(w.Close)
	srv := server.New(server.Options{CA: h.CA, Store: h.Store, ACME: w, Authority: "default", Log: log})
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.StartTLS()
	tb.Cleanup(ts.Close)
	root, _ := h.CA.Root(ctx)
	roots := x509.NewCertPool()
	roots.AddCert(root)
	roots.AddCert(ts.Certificate())
	return load.Config{Directory: ts.URL + "/acme/default/directory", Roots: roots, Duration: time.Minute}, resp
}

// TestRun: a short bounded run completes every issuance.
func TestRun(t *testing.T) {
	cfg, resp := inProcess(t)
	cfg.Clients, cfg.Count = 3, 12
	res, err := load.Run(context.Background(), cfg, resp)
	if err != nil {
		t.Fatal(err)
	}
	if res.Issued != 12 || res.Failed != 0 {
		t.Fatalf("issued %d, failed %d: %v", res.Issued, res.Failed, res.FirstErr)
	}
	if res.P50 <= 0 || res.P99 < res.P50 {
		t.Errorf("latencies p50 %s p99 %s", res.P50, res.P99)
	}
}

// BenchmarkIssuance: complete ACME issuances with 8 clients, in-process.
func BenchmarkIssuance(b *testing.B) {
	cfg, resp := inProcess(b)
	cfg.Clients, cfg.Count = 8, b.N
	b.ResetTimer()
	res, err := load.Run(context.Background(), cfg, resp)
	if err != nil || res.Failed > 0 {
		b.Fatalf("%v %v", err, res.FirstErr)
	}
	b.ReportMetric(res.PerSecond(), "certs/s")
	b.ReportMetric(float64(res.P99)/1e6, "p99-ms")
}

// BenchmarkCeiling: the cryptography of one issuance, for comparison.
func BenchmarkCeiling(b *testing.B) {
	b.ReportMetric(float64(load.Ceiling(b.N))/1e6, "ms/issuance")
}
