package load_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"signet/internal/acme/load"
	"signet/internal/acme/va"
	"signet/internal/acme/wfe"
	"signet/internal/home"
	"signet/internal/metrics"
	"signet/internal/server"
	"signet/internal/store"
	"signet/internal/store/postgres/pgtest"
)

// inProcess runs the ACME server over a fresh home (durable SQLite) in
// this process, for the generator's test and benchmark.
func inProcess(tb testing.TB) (load.Config, *load.Responders) {
	return nodes(tb, "", 1)
}

// nodes runs n ACME servers in this process, each with its own store
// connection, CA and front end over one home whose store is storeURL (""
// for SQLite; more than one node needs a postgres:// URL). The config's
// Nodes make the clients alternate between them.
func nodes(tb testing.TB, storeURL string, n int, tweak ...func(*wfe.Options, *va.Options)) (load.Config, *load.Responders) {
	ctx := context.Background()
	dir := tb.TempDir()
	h, _, err := home.Init(ctx, dir, home.InitOptions{Actor: "test", Store: storeURL})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close() })
	reg := metrics.New() // as serve does
	h.CA.Observe(reg)
	resp, err := load.StartResponders()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(resp.Close)
	_, p, _ := net.SplitHostPort(resp.HTTPAddr)
	port, _ := strconv.Atoi(p)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	root, _ := h.CA.Root(ctx)
	roots := x509.NewCertPool()
	roots.AddCert(root)
	var cfg load.Config
	for i := range n {
		if i > 0 {
			if h, err = home.Open(ctx, dir, home.Unlock{}); err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(func() { h.Close() })
		}
		h.Store.(store.Observed).ObserveCommits(reg)
		o, vo := wfe.Options{CA: h.CA, Store: h.Store, Log: log, Metrics: reg.ACME()}, va.Options{Resolver: resp.DNSAddr, HTTPPort: port, TLSPort: 1}
		for _, f := range tweak {
			f(&o, &vo)
		}
		o.VA = va.New(vo)
		w, err := wfe.New(ctx, o)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(w.Close)
		srv := server.New(server.Options{CA: h.CA, Store: h.Store, ACME: w, Authority: "default", Log: log})
		ts := httptest.NewUnstartedServer(srv.Handler())
		ts.StartTLS()
		tb.Cleanup(ts.Close)
		roots.AddCert(ts.Certificate())
		if i == 0 {
			cfg.Directory = ts.URL + "/acme/default/directory"
		} else {
			cfg.Nodes = append(cfg.Nodes, ts.Listener.Addr().String())
		}
	}
	cfg.Roots, cfg.Duration = roots, time.Minute
	return cfg, resp
}

// mustRun runs the generator and requires all cfg.Count issuances to succeed.
func mustRun(t *testing.T, cfg load.Config, resp *load.Responders) load.Result {
	t.Helper()
	res, err := load.Run(context.Background(), cfg, resp)
	if err != nil {
		t.Fatal(err)
	}
	if res.Issued != cfg.Count || res.Failed != 0 {
		t.Fatalf("issued %d of %d, failed %d: %v", res.Issued, cfg.Count, res.Failed, res.FirstErr)
	}
	return res
}

// TestRun: a short bounded run completes every issuance.
func TestRun(t *testing.T) {
	cfg, resp := inProcess(t)
	cfg.Clients, cfg.Count = 3, 12
	res := mustRun(t, cfg, resp)
	if res.P50 <= 0 || res.P99 < res.P50 {
		t.Errorf("latencies p50 %s p99 %s", res.P50, res.P99)
	}
}

// TestRunValidationProcessing: when the challenge POST answers
// "processing" (the validation outlasts ValidationWait, here by a slow
// resolver), the client keeps answering http-01 while it polls.
func TestRunValidationProcessing(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	slow := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, m *dns.Msg) {
		time.Sleep(200 * time.Millisecond)
		a := new(dns.Msg)
		a.SetReply(m)
		if q := m.Question[0]; q.Qtype == dns.TypeA {
			a.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(127, 0, 0, 1)}}
		}
		w.WriteMsg(a)
	})}
	go slow.ActivateAndServe()
	t.Cleanup(func() { slow.Shutdown() })
	cfg, resp := nodes(t, "", 1, func(o *wfe.Options, v *va.Options) {
		o.ValidationWait, v.Resolver = time.Millisecond, pc.LocalAddr().String()
	})
	cfg.Clients, cfg.Count = 2, 2
	mustRun(t, cfg, resp)
}

// TestRunRenewals: with one name per client, the first issuance of each
// client answers a challenge and its renewals reuse that authorization;
// with reuse off, every issuance answers one.
func TestRunRenewals(t *testing.T) {
	for _, tt := range []struct {
		reuse time.Duration
		want  int64
	}{{time.Hour, 2}, {0, 6}} {
		cfg, resp := nodes(t, "", 1, func(o *wfe.Options, _ *va.Options) { o.AuthzReuse = tt.reuse })
		cfg.Clients, cfg.Count, cfg.Names = 2, 6, 1
		if res := mustRun(t, cfg, resp); res.Solved != tt.want {
			t.Errorf("reuse %s: %d challenges answered, want %d", tt.reuse, res.Solved, tt.want)
		}
	}
}

// TestRunTwoNodesPostgres: clients whose requests alternate between two
// nodes on one PostgreSQL database complete every issuance, and both
// nodes answered requests.
func TestRunTwoNodesPostgres(t *testing.T) {
	cfg, resp := nodes(t, pgtest.URL(t), 2)
	cfg.Clients, cfg.Count = 2, 6
	res := mustRun(t, cfg, resp)
	if len(res.Requests) != 2 || res.Requests[0] == 0 || res.Requests[1] == 0 {
		t.Errorf("requests per node %v, want both nodes used", res.Requests)
	}
}

// BenchmarkIssuance: complete ACME issuances with 8 clients, in-process.
func BenchmarkIssuance(b *testing.B) {
	cfg, resp := inProcess(b)
	cfg.Clients, cfg.Count = 8, b.N
	written := writtenBytes()
	b.ResetTimer()
	res, err := load.Run(context.Background(), cfg, resp)
	if err != nil || res.Failed > 0 {
		b.Fatalf("%v %v", err, res.FirstErr)
	}
	b.ReportMetric(res.PerSecond(), "certs/s")
	b.ReportMetric(float64(res.P99)/1e6, "p99-ms")
	if w := writtenBytes(); w >= 0 && written >= 0 {
		b.ReportMetric(float64(w-written)/1024/float64(b.N), "disk-KiB/op")
	}
}

// writtenBytes is what this process has had written to disk (Linux's
// /proc/self/io write_bytes: the WAL and its checkpoints), or -1.
func writtenBytes() int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

// BenchmarkIssuancePostgres: the same on PostgreSQL (SIGNET_TEST_POSTGRES)
// with one node and with two nodes in this process.
func BenchmarkIssuancePostgres(b *testing.B) {
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			cfg, resp := nodes(b, pgtest.URL(b), n)
			cfg.Clients, cfg.Count = 8, b.N
			b.ResetTimer()
			res, err := load.Run(context.Background(), cfg, resp)
			if err != nil || res.Failed > 0 {
				b.Fatalf("%v %v", err, res.FirstErr)
			}
			b.ReportMetric(res.PerSecond(), "certs/s")
			b.ReportMetric(float64(res.P99)/1e6, "p99-ms")
		})
	}
}

// BenchmarkCeiling: the cryptography of one issuance, for comparison.
func BenchmarkCeiling(b *testing.B) {
	b.ReportMetric(float64(load.Ceiling(b.N))/1e6, "ms/issuance")
}
