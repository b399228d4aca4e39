package benchload

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/crypto/ocsp"

	"signet/internal/home"
	"signet/internal/store"
	"signet/internal/store/postgres/pgtest"
)

// TestSampleInventory draws from a loaded home, on SQLite and on
// PostgreSQL: distinct certificates of the home, their status as the store
// has it, a GET path whose request names each one's serial and issuer,
// and only serials before below when it is set.
func TestSampleInventory(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			o := home.InitOptions{Actor: "test"}
			if backend == "postgres" {
				o.Store = pgtest.URL(t)
			}
			h, _, err := home.Init(ctx, t.TempDir(), o)
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			if _, err := Load(ctx, h, Options{Authority: "default", Count: 60, RevokeEvery: 10, Workers: 8}); err != nil {
				t.Fatal(err)
			}
			auth, err := h.Store.Authority(ctx, "default")
			if err != nil {
				t.Fatal(err)
			}
			issuer, err := x509.ParseCertificate(auth.CertDER)
			if err != nil {
				t.Fatal(err)
			}
			all, err := SampleInventory(ctx, h, "default", 1000, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(all) < 20 {
				t.Fatalf("%d certificates drawn from 60 with n=1000; want most of them", len(all))
			}
			seen := map[string]bool{}
			revoked := 0
			for _, s := range all {
				if seen[s.Serial] {
					t.Errorf("serial %s drawn twice", s.Serial)
				}
				seen[s.Serial] = true
				c, err := h.Store.Certificate(ctx, s.Serial)
				if err != nil {
					t.Fatalf("drawn serial %s: %v", s.Serial, err)
				}
				if s.Revoked != (c.Status == store.Revoked) {
					t.Errorf("serial %s: drawn revoked=%v, the store says %s", s.Serial, s.Revoked, c.Status)
				}
				if s.Revoked {
					revoked++
				}
				b64, ok := strings.CutPrefix(s.Path, "/ocsp/default/")
				if !ok {
					t.Fatalf("path %q is not under /ocsp/default/", s.Path)
				}
				b64, err = url.PathUnescape(b64)
				if err != nil {
					t.Fatal(err)
				}
				der, err := base64.StdEncoding.DecodeString(b64)
				if err != nil {
					t.Fatal(err)
				}
				req, err := ocsp.ParseRequest(der)
				if err != nil {
					t.Fatal(err)
				}
				if req.SerialNumber.Text(16) != s.Serial {
					t.Errorf("path of %s asks about %x", s.Serial, req.SerialNumber)
				}
				want, err := ocsp.CreateRequest(&x509.Certificate{SerialNumber: req.SerialNumber}, issuer, &ocsp.RequestOptions{Hash: crypto.SHA1})
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(der, want) {
					t.Errorf("path of %s: not the request for the authority's certificate", s.Serial)
				}
			}
			if revoked == 0 {
				t.Error("no revoked certificate drawn; one in ten is revoked")
			}
			below := all[0].Serial
			some, err := SampleInventory(ctx, h, "default", 1000, below)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range some {
				if s.Serial >= below {
					t.Errorf("serial %s drawn, not before %s", s.Serial, below)
				}
			}
		})
	}
}
