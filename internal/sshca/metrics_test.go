package sshca_test

import (
	"path/filepath"
	"testing"

	"signet/internal/kms"
	"signet/internal/metrics"
	"signet/internal/metrics/metricstest"
	"signet/internal/profile"
	"signet/internal/sshca"
	"signet/internal/store"
)

// TestSignatureMetrics: each SSH certificate is one signature of its
// authority's key, counted under the key's backend as the X.509 ones are.
func TestSignatureMetrics(t *testing.T) {
	f := newFixture(t, kms.Options{})
	f.authority(t, "users", profile.SSHUser, "file:users.key", kms.Ed25519, "alice")
	reg := metrics.New()
	f.ssh.Observe(reg)
	pub := sshKey(t, filepath.Join(t.TempDir(), "id"))
	for range 2 {
		f.sign(t, nil, sshca.Request{Authority: "users", PublicKey: pub, Type: store.SSHUserCert, Principals: []string{"alice"}}, "")
	}
	m := metricstest.Scrape(t, reg)
	if n := metricstest.Sum(m, "signet_signing_duration_seconds", map[string]string{"backend": "software", "token": "", "outcome": "ok"}); n != 2 {
		t.Errorf("two SSH certificates counted as %v signatures, want 2", n)
	}
}
