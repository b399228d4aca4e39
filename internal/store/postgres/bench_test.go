package postgres_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"math/big"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"signet/internal/audit"
	"signet/internal/ca"
	"signet/internal/ca/catest"
	"signet/internal/cputime"
	"signet/internal/kms"
	"signet/internal/lint"
	"signet/internal/policy"
	"signet/internal/profile"
	"signet/internal/store"
	"signet/internal/store/postgres"
	"signet/internal/store/postgres/pgtest"
	"signet/internal/store/sqlite"
)

// BenchmarkIssueNodes is direct issuance (ca.Issue: policy, profile, draft
// signature, zlint, real signature, durable record + audit event) on SQLite,
// on PostgreSQL with one node, and with two nodes (two stores with their
// own pools and writers, two CAs, requests split between them, in one
// process: what two nodes add is the contention on the chain lock), beside
// the crypto ceiling (CreateCertificate + lint) of the same run.
//
//	SIGNET_TEST_POSTGRES=postgres://... go test ./internal/store/postgres -run '^$' -bench . -benchtime 2s
func BenchmarkIssueNodes(b *testing.B) {
	b.Run("ceiling", benchCeiling)
	eachStore(b, func(b *testing.B, ss []store.Store) { benchIssue(b, setupCAs(b, ss)) })
}

// BenchmarkRecordNodes is the store alone: RecordCertificate with 64
// writes in flight per core, on SQLite and on PostgreSQL with one and two nodes.
func BenchmarkRecordNodes(b *testing.B) {
	eachStore(b, benchRecord)
}

// eachStore runs bench on SQLite, then on PostgreSQL with one node and with
// two (two stores with their own pools and writers on one database).
func eachStore(b *testing.B, bench func(b *testing.B, ss []store.Store)) {
	ctx := context.Background()
	b.Run("sqlite", func(b *testing.B) {
		st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "signet.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		bench(b, []store.Store{st})
	})
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("postgres-%dnode", n), func(b *testing.B) {
			url := pgtest.URL(b)
			var ss []store.Store
			for range n {
				st, err := postgres.Open(ctx, url)
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				ss = append(ss, st)
			}
			bench(b, ss)
		})
	}
}

func setupCAs(b *testing.B, ss []store.Store) []*ca.CA {
	ctx := context.Background()
	b.Setenv("TEST_PASSPHRASE", "test passphrase")
	keys := kms.NewManager(kms.Options{Dir: b.TempDir(), Passphrase: kms.Source("env:TEST_PASSPHRASE")})
	b.Cleanup(func() { keys.Close() })
	for _, uri := range []string{"file:root.key", "file:web.key"} {
		if _, err := keys.Generate(ctx, uri, kms.ECDSAP256); err != nil {
			b.Fatal(err)
		}
	}
	gate, err := lint.New()
	if err != nil {
		b.Fatal(err)
	}
	var cas []*ca.CA
	for _, st := range ss {
		cas = append(cas, ca.New(ca.Options{Store: st, Keys: keys, Lint: gate}))
	}
	if _, err := cas[0].CreateRoot(ctx, ca.RootSpec{CommonName: "Bench Root", KeyURI: "file:root.key", Actor: "bench"}); err != nil {
		b.Fatal(err)
	}
	if _, err := cas[0].CreateAuthority(ctx, ca.AuthoritySpec{Name: "web", Purpose: profile.TLSServer, KeyURI: "file:web.key",
		Actor: "bench", Policy: policy.Policy{DNS: []string{"*"}}}); err != nil {
		b.Fatal(err)
	}
	return cas
}

func benchIssue(b *testing.B, cas []*ca.CA) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ctx := context.Background()
	var next atomic.Uint64
	b.SetParallelism(64) // group commit needs requests in flight
	cpu := cputime.Process()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		c := cas[next.Add(1)%uint64(len(cas))]
		for pb.Next() {
			if _, err := c.Issue(ctx, ca.Request{Authority: "web", PublicKey: key.Public(), DNSNames: []string{"www.example.org"}}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	report(b, cpu)
}

func benchRecord(b *testing.B, ss []store.Store) {
	ctx := context.Background()
	if err := ss[0].CreateAuthority(ctx, store.Authority{Name: "ca", KeyURI: "file:k"}, auditEvent()); err != nil {
		b.Fatal(err)
	}
	var next, serial atomic.Uint64
	b.SetParallelism(64)
	cpu := cputime.Process()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		st := ss[next.Add(1)%uint64(len(ss))]
		for pb.Next() {
			c := store.Certificate{Serial: big.NewInt(int64(serial.Add(1))).Text(16), Authority: "ca", DNSNames: []string{"www.example.org"},
				NotBefore: time.Unix(1e9, 0), NotAfter: time.Now().Add(time.Hour), DER: make([]byte, 600)}
			if err := st.RecordCertificate(ctx, c, auditEvent()); err != nil {
				b.Error(err)
				return
			}
		}
	})
	report(b, cpu)
}

func benchCeiling(b *testing.B) {
	c := catest.NewCeiling(b)
	gate, err := lint.New()
	if err != nil {
		b.Fatal(err)
	}
	cpu := cputime.Process()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			der, err := c.Sign()
			if err == nil {
				err = gate.Check(der)
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	report(b, cpu)
}

func report(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
	b.ReportMetric(float64((cputime.Process()-start).Microseconds())/float64(b.N), "cpu-µs/op")
}

func auditEvent() audit.Event { return audit.Event{Actor: "bench"} }
