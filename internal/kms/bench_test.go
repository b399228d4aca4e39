package kms_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"testing"

	"signet/internal/kms"
	"signet/internal/kms/kmstest"
)

// BenchmarkSign measures one ECDSA P-256 signature of a SHA-256 digest,
// from parallel goroutines, in software and on SoftHSM through crypto11's
// session pool.
func BenchmarkSign(b *testing.B) {
	ctx := context.Background()
	digest := sha256.Sum256([]byte("tbsCertificate"))
	run := func(b *testing.B, s crypto.Signer) {
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Sign(rand.Reader, digest[:], crypto.SHA256); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}

	b.Run("software/ecdsa-p256", func(b *testing.B) {
		b.Setenv("SIGNET_BENCH_PASS", "bench passphrase")
		m := kms.NewManager(kms.Options{Dir: b.TempDir(), Passphrase: "env:SIGNET_BENCH_PASS"})
		defer m.Close()
		s, err := m.Generate(ctx, "file:bench.key", kms.ECDSAP256)
		if err != nil {
			b.Fatal(err)
		}
		run(b, s)
	})

	b.Run("softhsm/ecdsa-p256", func(b *testing.B) {
		if !kms.PKCS11 {
			b.Skip("this build has no PKCS#11 (CGO_ENABLED=0)")
		}
		module, pin := kmstest.SoftHSM(b, "bench")
		b.Setenv("SIGNET_BENCH_PIN", pin)
		m := kms.NewManager(kms.Options{Module: module, PIN: "env:SIGNET_BENCH_PIN"})
		defer m.Close()
		s, err := m.Generate(ctx, "pkcs11:token=bench;object=bench", kms.ECDSAP256)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := x509.MarshalPKIXPublicKey(s.Public()); err != nil {
			b.Fatal(err)
		}
		run(b, s)
	})
}
