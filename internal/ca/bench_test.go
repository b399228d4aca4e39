package ca_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"signet/internal/ca"
	"signet/internal/ca/catest"
	"signet/internal/cputime"
	"signet/internal/kms"
	"signet/internal/kms/kmstest"
	"signet/internal/policy"
	"signet/internal/profile"
	"signet/internal/store/sqlite"
)

// The issuance benchmarks: the whole path (policy, profile, lint, sign,
// durable group-committed record) beside its parts measured in the same
// run, so BENCHMARKS.md can give the ratio to the ceiling.
//
//	go test ./internal/ca -run '^$' -bench . -benchtime 3s -cpu 1,2

func BenchmarkIssue(b *testing.B) {
	b.Run("software-p256", func(b *testing.B) {
		f := newFixture(b, nil)
		// The kms signers themselves, not the fixture's counting wrappers.
		benchIssue(b, ca.New(ca.Options{Store: f.store, Keys: f.keys.kms, Lint: lintGate(b)}))
	})
	b.Run("softhsm-p256", func(b *testing.B) {
		if os.Getenv("SIGNET_BENCH_SOFTHSM") == "" && !hasSoftHSM() {
			b.Skip("softhsm2 not installed")
		}
		benchIssue(b, softHSMCA(b))
	})
}

func benchIssue(b *testing.B, c *ca.CA) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ctx := context.Background()
	// Group commit needs requests in flight, as a busy server has them:
	// 32 goroutines per core wait on each batch's fsync together.
	b.SetParallelism(64)
	cpu := startCPU()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Issue(ctx, ca.Request{Authority: "web", PublicKey: key.Public(), DNSNames: []string{"www.example.org"}}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
	cpu.report(b)
}

// cpuClock measures the process's CPU time (user+system) across a
// benchmark: on a shared machine, CPU per operation is steadier than
// throughput, and 2 cores / (CPU per op) is the throughput it allows.
type cpuClock struct{ start time.Duration }

func startCPU() cpuClock { return cpuClock{cputime.Process()} }

func (c cpuClock) report(b *testing.B) {
	b.ReportMetric(float64((cputime.Process()-c.start).Microseconds())/float64(b.N), "cpu-µs/op")
}

// BenchmarkCeiling is the raw crypto: one x509.CreateCertificate with a
// P-256 key, and the zlint pass alone.
func BenchmarkCeiling(b *testing.B) {
	c := catest.NewCeiling(b)
	b.Run("CreateCertificate", func(b *testing.B) {
		cpu := startCPU()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Sign(); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
		cpu.report(b)
	})
	der, err := c.Sign()
	if err != nil {
		b.Fatal(err)
	}
	gate := lintGate(b)
	b.Run("Lint", func(b *testing.B) {
		cpu := startCPU()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := gate.Check(der); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
		cpu.report(b)
	})
}

func hasSoftHSM() bool {
	_, err := os.Stat("/usr/lib/softhsm/libsofthsm2.so")
	return err == nil
}

// softHSMCA is newFixture's CA with both CA keys on a SoftHSM2 token.
func softHSMCA(b *testing.B) *ca.CA {
	ctx := context.Background()
	module, pin := kmstest.SoftHSM(b, "bench")
	pinFile := filepath.Join(b.TempDir(), "pin")
	if err := os.WriteFile(pinFile, []byte(pin), 0o600); err != nil {
		b.Fatal(err)
	}
	mgr := kms.NewManager(kms.Options{Module: module, PIN: kms.Source("file:" + pinFile)})
	b.Cleanup(func() { mgr.Close() })
	for _, o := range []string{"root", "web"} {
		if _, err := mgr.Generate(ctx, fmt.Sprintf("pkcs11:token=bench;object=%s", o), kms.ECDSAP256); err != nil {
			b.Fatal(err)
		}
	}
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "signet.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	c := ca.New(ca.Options{Store: st, Keys: mgr, Lint: lintGate(b)})
	if _, err := c.CreateRoot(ctx, ca.RootSpec{CommonName: "Bench Root", KeyURI: "pkcs11:token=bench;object=root"}); err != nil {
		b.Fatal(err)
	}
	if _, err := c.CreateAuthority(ctx, ca.AuthoritySpec{Name: "web", Purpose: profile.TLSServer, KeyURI: "pkcs11:token=bench;object=web",
		Policy: policy.Policy{DNS: []string{"example.org"}}}); err != nil {
		b.Fatal(err)
	}
	return c
}
