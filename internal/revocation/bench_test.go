package revocation

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"signet/internal/ca"
	"signet/internal/cputime"
	"signet/internal/lint"
)

// seedRevoked writes n revoked certificates of authority "web" straight
// into the SQLite file in one transaction: the benchmark is about signing
// CRLs, not about a million ca.Issue calls. Rows carry no DER or names;
// issue and revoke seqs are unique, and one event at the end moves the
// head past them all.
func seedRevoked(b *testing.B, f *fixture, n int) {
	b.Helper()
	path := f.dbPath
	db, err := sql.Open("sqlite", path+"?_pragma=synchronous(OFF)&_pragma=cache_size(-400000)&_pragma=busy_timeout(10000)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	ins, err := tx.Prepare(`INSERT INTO certificates (serial, authority, subject, sans, not_before, not_after, status,
		revoked_at, reason, requester, der, issue_seq, shard, revoke_seq)
		VALUES (?, 'web', '', '{}', ?, ?, 'revoked', ?, ?, 'bench', x'00', ?, ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	now := f.clock().Add(-time.Minute) // revoked before the CRLs' thisUpdate
	const seq0 = 1 << 40
	var serial [16]byte
	for i := range n {
		// Serials as ca makes them: 16 octets, first bit clear; ascending
		// so the B-tree inserts append.
		binary.BigEndian.PutUint64(serial[:8], 0x4000000000000000|uint64(i))
		sum := sha256.Sum256(serial[:8])
		copy(serial[8:], sum[:8])
		s := hex.EncodeToString(serial[:])
		shard := int(binary.BigEndian.Uint32(serial[12:]) % ca.DefaultShards)
		_, err := ins.Exec(s, now.Add(-time.Hour).UnixNano(), now.Add(30*24*time.Hour).UnixNano(),
			now.Add(-time.Duration(i)*time.Second).UnixNano(), []int{0, 1, 4, 5}[i%4], seq0+2*i, shard, seq0+2*i+1)
		if err != nil {
			b.Fatal(err)
		}
	}
	if _, err := tx.Exec(`INSERT INTO events (seq, time, kind, actor, authority, subject, prev, hash)
		VALUES (?, ?, 'bench.seed', 'bench', 'web', '', x'00', x'00')`, seq0+2*n+2, now.UnixNano()); err != nil {
		b.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	// A store in use has its WAL checkpointed: without this, the first
	// write of a timed path (a CRL's audit event) would copy the whole
	// seed into the database file.
	if _, err := db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
}

// peakRSS resets the kernel's high-water mark of this process's resident
// memory (clear_refs 5) and returns a function reading it.
func peakRSS(b *testing.B) func() float64 {
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("cannot reset peak RSS: %v", err)
	}
	return func() float64 { return statusMiB("VmHWM:") }
}

// statusMiB reads a memory field of /proc/self/status.
func statusMiB(field string) float64 {
	raw, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return float64(kb) / 1024
		}
	}
	return 0
}

// cpuPerOp starts counting the process's CPU time; the function it
// returns reports it per operation: on a shared machine it moves far less
// than wall time.
func cpuPerOp(b *testing.B) func() {
	start := cputime.Process()
	return func() { b.ReportMetric((cputime.Process()-start).Seconds()/float64(b.N), "cpu-s/op") }
}

var million *fixture // seeded once per benchmark binary run

// BenchmarkCRLMillion signs all 16 shard CRLs, or the whole CRL, of an
// authority with 1,000,000 revoked certificates. cold is `signet crl`:
// read every revocation from SQLite, then encode and sign; whole-cold is
// `signet crl --whole`. warm and whole-warm are what serve does after
// start: encode and sign from its in-memory mirror. whole-ceiling is the
// whole CRL's raw crypto: hashing and signing a TBS of its size (38 MB),
// the floor of any whole CRL of a million entries. peak-MiB is the
// process's peak resident memory during the timed loop (the seeded
// store's page cache included).
func BenchmarkCRLMillion(b *testing.B) {
	const n = 1_000_000
	if million == nil {
		million = newFixture(b)
		seedRevoked(b, million, n)
	}
	f := million
	ctx := context.Background()
	// The cold paths run once per `signet crl` process: each iteration's
	// peak is taken from a collected heap (the timer stopped), not on top
	// of the previous iteration's garbage. base-MiB is what was resident
	// before (the fixture, and what seeding left mapped).
	cold := func(whole bool) func(b *testing.B) {
		return func(b *testing.B) {
			var entries int
			var peakMiB, baseMiB float64
			var cpu time.Duration
			for b.Loop() {
				b.StopTimer()
				peak := peakRSS(b)
				baseMiB = max(baseMiB, statusMiB("VmRSS:"))
				b.StartTimer()
				start := cputime.Process()
				crls, err := SignAll(ctx, Options{CA: f.ca, Store: f.store}, "web", whole, nil)
				cpu += cputime.Process() - start
				if err != nil {
					b.Fatal(err)
				}
				peakMiB = max(peakMiB, peak())
				entries = 0
				for _, c := range crls {
					entries += c.Entries
				}
			}
			if entries < n {
				b.Fatalf("%d entries, want %d", entries, n)
			}
			b.ReportMetric(peakMiB, "peak-MiB")
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
			b.ReportMetric(baseMiB, "base-MiB")
		}
	}
	b.Run("cold", cold(false))
	b.Run("whole-cold", cold(true))
	var wholeDER []byte
	warm := func(whole bool) func(b *testing.B) {
		return func(b *testing.B) {
			s := New(Options{CA: f.ca, Store: f.store, Log: f.svc.o.Log})
			if err := s.Refresh(ctx); err != nil {
				b.Fatal(err)
			}
			a := s.authority("web")
			var shards []int // nil: all shards
			if whole {
				shards = []int{}
			}
			peak := peakRSS(b)
			defer cpuPerOp(b)()
			for b.Loop() {
				signed, err := s.signCRLs(ctx, a, shards, whole, nil)
				if err != nil {
					b.Fatal(err)
				}
				if whole {
					if len(signed) != 1 || signed[0].Entries < n {
						b.Fatalf("%d CRLs signed, want the whole one of %d entries", len(signed), n)
					}
					wholeDER = signed[0].DER
				}
			}
			b.ReportMetric(peak(), "peak-MiB")
		}
	}
	b.Run("warm", warm(false))
	b.Run("whole-warm", warm(true))
	b.Run("whole-ceiling", func(b *testing.B) {
		if wholeDER == nil {
			b.Skip("needs whole-warm's CRL")
		}
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tbs := wholeDER[4:] // about the TBSCertList's size
		defer cpuPerOp(b)()
		for b.Loop() {
			if _, err := crypto.SignMessage(key, rand.Reader, tbs, crypto.SHA256); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Why a CRL of more than ca.LintedCRLEntries is linted as a sample of
	// its entries, and why ca encodes CRLs itself: zlint over every entry
	// of the whole CRL, and x509.CreateRevocationList of the same entries.
	b.Run("whole-lint-every-entry", func(b *testing.B) {
		if wholeDER == nil {
			b.Skip("needs whole-warm's CRL")
		}
		gate, err := lint.New()
		if err != nil {
			b.Fatal(err)
		}
		peak := peakRSS(b)
		defer cpuPerOp(b)()
		for b.Loop() {
			if err := gate.CheckCRL(wholeDER); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(peak(), "peak-MiB")
	})
	b.Run("whole-create-revocation-list", func(b *testing.B) {
		if wholeDER == nil {
			b.Skip("needs whole-warm's CRL")
		}
		l, err := x509.ParseRevocationList(wholeDER)
		if err != nil {
			b.Fatal(err)
		}
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.RevocationList{Number: l.Number, ThisUpdate: l.ThisUpdate, NextUpdate: l.NextUpdate,
			RevokedCertificateEntries: l.RevokedCertificateEntries}
		l = nil
		peak := peakRSS(b)
		defer cpuPerOp(b)()
		for b.Loop() {
			if _, err := x509.CreateRevocationList(rand.Reader, tmpl, f.issuer, key); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(peak(), "peak-MiB")
	})
}

// BenchmarkOCSPLookup is the responder's hot path without HTTP: parse the
// request, find the issuer, return the cached response.
func BenchmarkOCSPLookup(b *testing.B) {
	f := newFixture(b)
	c := f.issue(b, 0)
	req := ocspRequest(b, c, f.issuer, crypto.SHA256)
	if r, _ := f.svc.Lookup(req); r == nil {
		b.Fatal("no response")
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r, _ := f.svc.Lookup(req); r == nil {
				b.Fatal("no response")
			}
		}
	})
}

// BenchmarkECDSASign is the ceiling a responder signing per request could
// not pass: one P-256 signature, what each response costs without the cache.
func BenchmarkECDSASign(b *testing.B) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	digest := sha256.Sum256([]byte("tbsResponseData"))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := key.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
				b.Fatal(err)
			}
		}
	})
}
