package sqlite_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"signet/internal/audit"
	"signet/internal/cputime"
	"signet/internal/store"
	"signet/internal/store/sqlite"
)

// BenchmarkAuditVerify measures audit.Verify on a SQLite store of 100,000
// certificate issues (700-byte DER each): reading the events, checking the
// chain, reading and hashing every row, the whole of `signet audit verify`
// but opening the store. In alternating rounds, the ceiling: bare SHA-256
// over what verify must hash (each event's encoding, each row's encoding),
// as %ceiling. Both are measured in CPU time (the machine is shared, so
// wall time moves with the load); events/s is the wall-clock rate.
func BenchmarkAuditVerify(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "signet.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateAuthority(ctx, store.Authority{Name: "web", KeyURI: "pkcs11:object=web"}, audit.Event{Actor: "bench"}); err != nil {
		b.Fatal(err)
	}
	t0 := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	der := make([]byte, 700)
	var wg sync.WaitGroup
	const workers = 256
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				c := store.Certificate{Serial: fmt.Sprintf("%032x", i+1), Authority: "web", DNSNames: []string{"host.example.org"},
					NotBefore: t0, NotAfter: t0.Add(90 * 24 * time.Hour), DER: der}
				if err := s.RecordCertificate(ctx, c, audit.Event{Actor: "acme:acct-0123456789"}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	// What the ceiling hashes, read once.
	var encs [][]byte
	err = s.Events(ctx, func(e audit.Event) error {
		enc := make([]byte, 0, 512)
		enc = append(enc, e.Kind...)
		enc = append(enc, e.Actor...)
		enc = append(enc, e.Subject...)
		enc = append(enc, e.Data...)
		enc = append(enc, audit.EncodeState(e.State)...)
		encs = append(encs, append(enc, make([]byte, 16+8*4+2*32)...))
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	row := make([]byte, 14+8+32+4*(8+4)+700+5+8+3)
	var pathTime, pathCPU, ceilCPU time.Duration
	b.ResetTimer()
	for range b.N {
		start, cpu := time.Now(), cputime.Process()
		rep, err := audit.Verify(ctx, s)
		pathTime += time.Since(start)
		pathCPU += cputime.Process() - cpu
		if err != nil || rep.Rows != n+1 {
			b.Fatalf("Verify: %+v, %v", rep, err)
		}
		b.StopTimer()
		cpu = cputime.Process()
		for _, enc := range encs {
			sha256.Sum256(enc)
			sha256.Sum256(row)
		}
		ceilCPU += cputime.Process() - cpu
		b.StartTimer()
	}
	events := float64(len(encs) * b.N)
	b.ReportMetric(events/pathTime.Seconds(), "events/s")
	b.ReportMetric(events/pathCPU.Seconds(), "events/cpu-s")
	b.ReportMetric(events/ceilCPU.Seconds(), "ceiling-events/cpu-s")
	b.ReportMetric(100*ceilCPU.Seconds()/pathCPU.Seconds(), "%ceiling")
}
