package benchload

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"signet/internal/cputime"
	"signet/internal/home"
	"signet/internal/revocation"
	"signet/internal/server"
)

// The large-inventory benchmarks of issue 21 run on a home filled by
// signet-benchload, named by SIGNET_BENCH_HOME (its "default" authority);
// without it, on a home of 20,000 certificates made here.
//
//	go run ./cmd/signet-benchload --home /tmp/h --count 1000000 --revoke-every 10
//	SIGNET_BENCH_HOME=/tmp/h go test ./internal/benchload -run '^$' -bench Inventory -benchtime 5s
//
// Everything is measured at the server, without the network: OCSP through
// revocation.Service.Lookup (the handler's work but HTTP), the read API
// through the server's handler.

type inventory struct {
	h       *home.Home
	issuer  *x509.Certificate
	serials []*big.Int // a uniform sample, in random order
	count   int64      // the sample's size
}

var inv *inventory

func openInventory(b *testing.B) *inventory {
	if inv != nil {
		return inv
	}
	ctx := context.Background()
	dir := os.Getenv("SIGNET_BENCH_HOME")
	var h *home.Home
	var err error
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "signet-bench-inventory")
		os.RemoveAll(dir)
		if h, _, err = home.Init(ctx, dir, home.InitOptions{Actor: "bench"}); err == nil {
			_, err = Load(ctx, h, Options{Authority: "default", Count: 20000, RevokeEvery: 10})
		}
	} else {
		h, err = home.Open(ctx, dir, home.Unlock{})
	}
	if err != nil {
		b.Fatal(err)
	}
	rec, err := h.Store.Authority(ctx, "default")
	if err != nil {
		b.Fatal(err)
	}
	issuer, err := x509.ParseCertificate(rec.CertDER)
	if err != nil {
		b.Fatal(err)
	}
	// A uniform sample of 200,000 serials (SQLite or PostgreSQL).
	sample, err := SampleInventory(ctx, h, "default", 200000, "")
	if err != nil {
		b.Fatal(err)
	}
	in := &inventory{h: h, issuer: issuer, count: int64(len(sample))}
	for _, s := range sample {
		v, _ := new(big.Int).SetString(s.Serial, 16)
		in.serials = append(in.serials, v)
	}
	inv = in
	return in
}

func (in *inventory) request(b *testing.B, serial *big.Int) []byte {
	der, err := ocsp.CreateRequest(&x509.Certificate{SerialNumber: serial}, in.issuer, &ocsp.RequestOptions{Hash: crypto.SHA1})
	if err != nil {
		b.Fatal(err)
	}
	return der
}

// BenchmarkInventoryOCSP: hot answers 1,000 serials over and over (cache
// hits), random a new uniformly drawn serial each time (a store lookup
// and a signature each: the sample is larger than what b.N reaches), and
// ceiling is the raw P-256 signature a miss cannot avoid (the responder's
// key), all with both cores.
func BenchmarkInventoryOCSP(b *testing.B) {
	in := openInventory(b)
	ctx := context.Background()
	svc := revocation.New(revocation.Options{CA: in.h.CA, Store: in.h.Store, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	start := time.Now()
	if err := svc.Refresh(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d certificates drawn; first refresh (revocations, CRLs, responder) %s", in.count, time.Since(start).Round(time.Millisecond))
	hot := make([][]byte, 1000)
	for i := range hot {
		hot[i] = in.request(b, in.serials[i])
	}
	random := make([][]byte, len(in.serials)-len(hot))
	for i := range random {
		random[i] = in.request(b, in.serials[len(hot)+i])
	}
	// perCPU reports operations per CPU-second of the process: on this
	// shared machine it moves far less than wall time, and the ratio to
	// the ceiling's is what the path costs beyond its signature.
	perCPU := func(b *testing.B) func() {
		start := cputime.Process()
		return func() { b.ReportMetric(float64(b.N)/(cputime.Process()-start).Seconds(), "ops/cpu-s") }
	}
	check := func(b *testing.B, der []byte) {
		if r, status := svc.Lookup(der); r == nil {
			b.Fatalf("no response: %x", status)
		}
	}
	b.Run("hot", func(b *testing.B) {
		for _, der := range hot {
			check(b, der)
		}
		var i atomic.Int64
		b.ResetTimer()
		defer perCPU(b)()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				check(b, hot[i.Add(1)%int64(len(hot))])
			}
		})
	})
	// hot-http: the same over loopback HTTP (POST, keep-alive, 8 clients
	// in this process: ops/cpu-s counts the clients' CPU too).
	b.Run("hot-http", func(b *testing.B) {
		srv := httptest.NewServer(svc.Handler())
		defer srv.Close()
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
		var i atomic.Int64
		b.SetParallelism(4) // 8 clients on 2 cores
		b.ResetTimer()
		defer perCPU(b)()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := client.Post(srv.URL+"/ocsp/default", "application/ocsp-request", bytes.NewReader(hot[i.Add(1)%int64(len(hot))]))
				if err != nil {
					b.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || len(body) < 100 {
					b.Fatalf("%d, %d bytes", resp.StatusCode, len(body))
				}
			}
		})
	})
	var next atomic.Int64
	b.Run("random", func(b *testing.B) {
		if b.N > len(random) {
			b.Fatalf("b.N %d exceeds the %d distinct serials drawn", b.N, len(random))
		}
		defer perCPU(b)()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				check(b, random[next.Add(1)%int64(len(random))])
			}
		})
	})
	b.Run("ceiling-sign", func(b *testing.B) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		digest := sha256.Sum256([]byte("tbsResponseData"))
		defer perCPU(b)()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := key.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// BenchmarkInventoryReadAPI: the first page of
// GET /api/v1/certificates?expiring=7d&authority=default and
// GET /api/v1/certificates/{serial} for uniformly drawn serials, through
// the server's handler, one request at a time.
func BenchmarkInventoryReadAPI(b *testing.B) {
	in := openInventory(b)
	srv := server.New(server.Options{CA: in.h.CA, Store: in.h.Store, AdminToken: []byte("bench"),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	h := srv.Handler()
	get := func(b *testing.B, path string) {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Authorization", "Bearer bench")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("%s: %d %s", path, w.Code, w.Body)
		}
	}
	b.Run("expiring-7d-first-page", func(b *testing.B) {
		for b.Loop() {
			get(b, "/api/v1/certificates?expiring=7d&authority=default")
		}
	})
	b.Run("certificate", func(b *testing.B) {
		i := 0
		for b.Loop() {
			get(b, "/api/v1/certificates/"+in.serials[i%len(in.serials)].Text(16))
			i++
		}
	})
}
