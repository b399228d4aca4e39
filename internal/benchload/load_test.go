package benchload

import (
	"context"
	"crypto/x509"
	"testing"

	"signet/internal/audit"
	"signet/internal/home"
	"signet/internal/store"
)

// TestLoadVerifies loads a few certificates and checks what a benchmark
// relies on: they are signed by the authority, every tenth is revoked, and
// the audit log still verifies over them.
func TestLoadVerifies(t *testing.T) {
	ctx := context.Background()
	h, _, err := home.Init(ctx, t.TempDir(), home.InitOptions{Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	rep, err := Load(ctx, h, Options{Authority: "default", Count: 50, RevokeEvery: 10, Workers: 8})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Issued != 50 || rep.Revoked != 5 {
		t.Fatalf("issued %d, revoked %d; want 50 and 5", rep.Issued, rep.Revoked)
	}
	auth, err := h.Store.Authority(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := x509.ParseCertificate(auth.CertDER)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := h.Store.Certificates(ctx, store.Filter{Authority: "default", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	revoked := 0
	for _, c := range certs {
		if c.Requester != "benchload" {
			continue
		}
		cert, err := x509.ParseCertificate(c.DER)
		if err != nil {
			t.Fatal(err)
		}
		if err := cert.CheckSignatureFrom(issuer); err != nil {
			t.Errorf("certificate %s: %v", c.Serial, err)
		}
		if c.Status == store.Revoked {
			revoked++
		}
	}
	if revoked != 5 {
		t.Errorf("%d revoked certificates listed, want 5", revoked)
	}
	v, err := audit.Verify(ctx, h.Store)
	if err != nil || v.BrokenSeq != 0 {
		t.Fatalf("audit verify: %+v, %v", v, err)
	}
	if v.Certificates < 50 {
		t.Errorf("verify cross-checked %d certificates, want at least 50", v.Certificates)
	}
}
