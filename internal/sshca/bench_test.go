package sshca_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"signet/internal/kms"
	"signet/internal/kms/kmstest"
	"signet/internal/profile"
	"signet/internal/sshca"
	"signet/internal/store"
)

// The signing benchmarks: the whole path (policy, limits, sign, durable
// group-committed record with its audit event) beside the bare signature
// of the same certificate by the same key, measured in the same run, so
// BENCHMARKS.md can give the ratio to the ceiling.
//
//	go test ./internal/sshca -run '^$' -bench . -benchtime 2s

var benchKeys = []kms.KeyType{kms.Ed25519, kms.ECDSAP256}

// inFlight is the number of concurrent requests per core (GOMAXPROCS).
const inFlight = 128

func BenchmarkSSHIssue(b *testing.B) {
	for _, where := range []string{"software", "softhsm"} {
		for _, kt := range benchKeys {
			b.Run(fmt.Sprintf("%s-%s", where, kt), func(b *testing.B) {
				f, uri := benchFixture(b, where, kt)
				pub := benchSubject(b)
				ctx := context.Background()
				b.Run("path", func(b *testing.B) {
					req := sshca.Request{Authority: "bench", PublicKey: pub, Type: store.SSHUserCert, Principals: []string{"alice"}, Actor: "bench"}
					// Group commit needs requests in flight, as a busy server has
					// them: the batch, and so the work per fsync, grows with them.
					b.SetParallelism(inFlight)
					b.ResetTimer()
					cpu := processCPU()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							if _, err := f.ssh.Issue(ctx, req); err != nil {
								b.Error(err)
								return
							}
						}
					})
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
					reportCPU(b, cpu)
				})
				b.Run("ceiling", func(b *testing.B) {
					key, err := f.keys.Signer(ctx, uri)
					if err != nil {
						b.Fatal(err)
					}
					signer, err := sshca.NewSigner(key)
					if err != nil {
						b.Fatal(err)
					}
					b.SetParallelism(32)
					b.ResetTimer()
					cpu := processCPU()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							cert := &ssh.Certificate{Key: pub, Serial: 1, CertType: ssh.UserCert, KeyId: "alice",
								ValidPrincipals: []string{"alice"}, ValidAfter: 1, ValidBefore: 1 << 40}
							if err := cert.SignCert(rand.Reader, signer); err != nil {
								b.Error(err)
								return
							}
						}
					})
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "certs/s")
					reportCPU(b, cpu)
				})
			})
		}
	}
}

// processCPU is the CPU time this process has used: on a machine shared
// with other work, CPU per certificate says more than certificates per
// second.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64((processCPU()-start).Microseconds())/float64(b.N), "cpu-µs/op")
}

func benchSubject(b *testing.B) ssh.PublicKey {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	spub, err := ssh.NewPublicKey(pub)
	if err != nil {
		b.Fatal(err)
	}
	return spub
}

// benchFixture makes an ssh-user authority "bench" with its key in software
// or on a fresh SoftHSM2 token.
func benchFixture(b *testing.B, where string, kt kms.KeyType) (*fixture, string) {
	o := kms.Options{}
	uri := "file:bench.key"
	if where == "softhsm" {
		module, pin := kmstest.SoftHSM(b, "bench")
		pinFile := filepath.Join(b.TempDir(), "pin")
		writeFile(b, pinFile, []byte(pin))
		o = kms.Options{Module: module, PIN: kms.Source("file:" + pinFile)}
		uri = "pkcs11:token=bench;object=bench"
	}
	f := newFixture(b, o)
	f.authority(b, "bench", profile.SSHUser, uri, kt, "alice")
	return f, uri
}
