package revocation

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"signet/internal/ca"
	"signet/internal/kms/kmstest"
)

// getWhole fetches /crl/web.crl, checks the CRL's signature and headers,
// and returns it with its ETag.
func (f *fixture) getWhole(t *testing.T) (*x509.RevocationList, []byte, string) {
	t.Helper()
	resp, err := http.Get(f.srv.URL + "/crl/web.crl")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	der, _ := io.ReadAll(resp.Body)
	h := resp.Header
	if resp.StatusCode != 200 || h.Get("Content-Type") != "application/pkix-crl" {
		t.Fatalf("/crl/web.crl: %d %s", resp.StatusCode, h.Get("Content-Type"))
	}
	age, ok := strings.CutPrefix(h.Get("Cache-Control"), "public, no-transform, max-age=")
	if n, err := strconv.Atoi(age); !ok || err != nil || n <= 0 || n > 300 {
		t.Errorf("Cache-Control %q, want max-age of at most 5 minutes", h.Get("Cache-Control"))
	}
	if h.Get("Etag") == "" || h.Get("Last-Modified") == "" || h.Get("Expires") == "" {
		t.Errorf("caching headers missing: %v", h)
	}
	l, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.CheckSignatureFrom(f.issuer); err != nil {
		t.Fatal(err)
	}
	for _, e := range l.Extensions {
		if e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 28}) {
			t.Error("the whole CRL has an issuing distribution point")
		}
	}
	return l, der, h.Get("Etag")
}

// TestWholeCRL: /crl/<authority>.crl lists the revoked certificates of
// every shard, with no IDP and CRL numbers of its own; a revocation makes
// it stale and it is re-signed once WholeCRLInterval has passed (not at
// once, and not again without a change), and at half its validity.
// OpenSSL, given it alone, accepts a valid leaf and refuses revoked leaves
// of two shards.
func TestWholeCRL(t *testing.T) {
	openssl := kmstest.RequireTool(t, "openssl")
	f := newFixture(t)
	ctx := context.Background()
	first, _, etag0 := f.getWhole(t)
	if len(first.RevokedCertificateEntries) != 0 {
		t.Fatalf("a new authority's whole CRL lists %d entries", len(first.RevokedCertificateEntries))
	}
	// Leaves in three shards: two to revoke, one to stay valid.
	byShard := map[string]*x509.Certificate{}
	for i := 0; len(byShard) < 3; i++ {
		if i == 40 {
			t.Fatalf("40 leaves landed in %d shards", len(byShard))
		}
		c := f.issue(t, 0)
		byShard[c.CRLDistributionPoints[0]] = c
	}
	var leaves []*x509.Certificate
	for _, c := range byShard {
		leaves = append(leaves, c)
	}
	revoked, valid := leaves[:2], leaves[2]
	for _, c := range revoked {
		if _, err := f.ca.Revoke(ctx, ca.Serial(c.SerialNumber), 1, "test"); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.svc.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range revoked {
		if !lists(f.crl(t, c.CRLDistributionPoints[0]), c.SerialNumber) {
			t.Fatal("the shard CRL does not list its revoked certificate at once")
		}
	}
	if l, _, etag := f.getWhole(t); l.Number.Cmp(first.Number) != 0 || etag != etag0 || len(l.RevokedCertificateEntries) != 0 {
		t.Errorf("right after the revocations: whole CRL number %v, %d entries; want it not re-signed yet", l.Number, len(l.RevokedCertificateEntries))
	}

	f.advance(WholeCRLInterval + 2*time.Second)
	if err := f.svc.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	second, der, etag := f.getWhole(t)
	if second.Number.Cmp(first.Number) <= 0 || etag == etag0 {
		t.Errorf("a minute after the revocations: whole CRL number %v → %v; want it re-signed", first.Number, second.Number)
	}
	for _, c := range revoked {
		if !lists(second, c.SerialNumber) {
			t.Errorf("the whole CRL does not list %x", c.SerialNumber)
		}
	}
	if lists(second, valid.SerialNumber) || len(second.RevokedCertificateEntries) != 2 {
		t.Errorf("the whole CRL lists %d entries, want the 2 revoked", len(second.RevokedCertificateEntries))
	}

	// No change, a minute later: not re-signed. A cached copy is still good.
	f.advance(WholeCRLInterval + 2*time.Second)
	if err := f.svc.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if l, _, e := f.getWhole(t); l.Number.Cmp(second.Number) != 0 || e != etag {
		t.Errorf("without a revocation: number %v → %v; want it unchanged", second.Number, l.Number)
	}
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/crl/web.crl", nil)
	req.Header.Set("If-None-Match", etag)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match with the current ETag: %v %v, want 304", resp.Status, err)
	}

	// Half its validity: re-signed without a revocation.
	f.advance(12 * time.Hour)
	if err := f.svc.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if l, _, _ := f.getWhole(t); l.Number.Cmp(second.Number) <= 0 || !lists(l, revoked[0].SerialNumber) {
		t.Errorf("at half its validity: number %v → %v, lists the revoked: %v; want it re-signed, listing them", second.Number, l.Number, lists(l, revoked[0].SerialNumber))
	}

	// OpenSSL with the second whole CRL alone (-crl_check: the leaf's issuer's CRL).
	dir := t.TempDir()
	root, err := f.ca.Root(ctx)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rootPEM, chainPEM := write("root.pem", "CERTIFICATE", root.Raw), write("chain.pem", "CERTIFICATE", f.issuer.Raw)
	crlPEM := write("whole.pem", "X509 CRL", der)
	verify := func(c *x509.Certificate) (string, error) {
		leaf := write("leaf.pem", "CERTIFICATE", c.Raw)
		// -attime: the fixture's clock is ahead of the real one.
		out, err := exec.Command(openssl, "verify", "-attime", strconv.FormatInt(f.clock().Unix(), 10), "-crl_check", "-CAfile", rootPEM, "-untrusted", chainPEM, "-CRLfile", crlPEM, leaf).CombinedOutput()
		return string(out), err
	}
	if out, err := verify(valid); err != nil || !strings.Contains(out, "OK") {
		t.Errorf("openssl verify, valid leaf, whole CRL: %v\n%s", err, out)
	}
	for _, c := range revoked {
		if out, err := verify(c); err == nil || !strings.Contains(out, "certificate revoked") {
			t.Errorf("openssl verify, revoked leaf of %s, whole CRL: %v\n%s", c.CRLDistributionPoints[0], err, out)
		}
	}
	out, err := exec.Command(openssl, "crl", "-in", crlPEM, "-noout", "-text").CombinedOutput()
	if err != nil || strings.Contains(string(out), "Issuing Distribution Point") || !strings.Contains(string(out), "CRL Number") {
		t.Errorf("openssl crl -text: %v\n%s", err, out)
	}
}
