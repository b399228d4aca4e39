package audit

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// benchLog is a log of n certificate issues, each with its row, stored as
// a database keeps them: the state as EncodeState's bytes, decoded on read.
type benchLog struct {
	events []Event
	states [][]byte
	rows   []Row
	// atStates, if set, runs as each States begins: when Verify holds
	// the marks of the rows it compares.
	atStates func()
}

func (l *benchLog) Events(ctx context.Context, fn func(Event) error) error {
	for i, e := range l.events {
		rows, err := DecodeState(l.states[i])
		if err != nil {
			return err
		}
		e.State = rows
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

func (l *benchLog) IssuedCertificates(ctx context.Context, fn func(string, int64) error) error {
	for _, e := range l.events {
		if err := fn(e.Subject, e.Seq); err != nil {
			return err
		}
	}
	return nil
}

func (l *benchLog) States(ctx context.Context, keep func(table, key string) bool, fn func(Row) error) error {
	if l.atStates != nil {
		l.atStates()
	}
	for _, r := range l.rows {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func newBenchLog(b *testing.B, n int) *benchLog {
	l := &benchLog{}
	prev := Genesis
	t0 := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	der := make([]byte, 700) // a typical leaf certificate
	for i := range n {
		serial := fmt.Sprintf("%032x", i+1)
		row, err := HashRow("certificates", serial, []string{"der", "status", "revoked_at", "reason"}, []any{der, "valid", nil, int64(0)})
		if err != nil {
			b.Fatal(err)
		}
		e := Event{Seq: int64(i + 1), Time: t0.Add(time.Duration(i)), Kind: KindCertificateIssue, Actor: "acme:acct-0123456789",
			Authority: "web", Subject: serial, Data: json.RawMessage(`{"sans":["host.example.org"],"not_after":"2027-03-06T00:00:00Z"}`),
			State: []Row{row}}
		e.Seal(prev)
		prev = e.Hash
		l.states = append(l.states, EncodeState(e.State))
		e.State = nil
		l.events = append(l.events, e)
		l.rows = append(l.rows, row)
	}
	return l
}

// BenchmarkVerify measures audit.Verify over certificate issue events
// with their rows (events/s), and in alternating rounds the ceiling: bare
// SHA-256 over the bytes Verify must hash (each event's encoding and each
// row's hash input), reported as %ceiling. The store's reads are not in it.
func BenchmarkVerify(b *testing.B) {
	const n = 200_000
	l := newBenchLog(b, n)
	// What the ceiling hashes: per event its canonical encoding, per row
	// an input of the size HashRow hashes.
	var encs [][]byte
	for i, e := range l.events {
		e.State, _ = DecodeState(l.states[i])
		encs = append(encs, e.appendCanonical(nil))
	}
	rowInput := make([]byte, len("signet-row-v1\n")+4+12+4+32+4+3+1+4+700+4+6+1+4+5+4+10+1+4+6+1+8)
	ctx := context.Background()
	var pathTime, ceilTime time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		rep, err := Verify(ctx, l)
		if err != nil || rep.Events != n || rep.Rows != n {
			b.Fatalf("Verify: %+v, %v", rep, err)
		}
		pathTime += time.Since(start)
		b.StopTimer()
		start = time.Now()
		for _, enc := range encs {
			sha256.Sum256(enc)
			sha256.Sum256(rowInput)
		}
		ceilTime += time.Since(start)
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/pathTime.Seconds(), "events/s")
	b.ReportMetric(float64(n*b.N)/ceilTime.Seconds(), "ceiling-events/s")
	b.ReportMetric(100*ceilTime.Seconds()/pathTime.Seconds(), "%ceiling")
}

// BenchmarkVerifyMemory reports the heap Verify holds while it compares
// rows, per row of a log of 200,000 certificate issues (held-B/row: live
// heap after a collection as the rows are read, less the same before
// Verify), in one pass and in passes of a tenth of the rows.
func BenchmarkVerifyMemory(b *testing.B) {
	const n = 200_000
	l := newBenchLog(b, n)
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	for _, rows := range []int{n, n / 10} {
		b.Run(fmt.Sprintf("pass=%d", rows), func(b *testing.B) {
			old := passRows
			passRows = rows
			defer func() { passRows = old }()
			var held uint64
			l.atStates = func() { held = max(held, heap()) }
			defer func() { l.atStates = nil }()
			for range b.N {
				before := heap()
				held = 0
				rep, err := Verify(context.Background(), l)
				if err != nil || rep.Rows != n {
					b.Fatalf("Verify: %+v, %v", rep, err)
				}
				b.ReportMetric(float64(held-before)/n, "held-B/row")
			}
		})
	}
}
