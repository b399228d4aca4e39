package check

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"
)

// leafFor is a self-signed certificate for pub valid from notBefore to
// notAfter.
func leafFor(t *testing.T, pub any, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "leaf.test"}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestExpiry: 14 days left warn, or a third of a short lifetime; outside
// the validity fails.
func TestExpiry(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	for _, tc := range []struct {
		name        string
		lived, left time.Duration
		want        Level
	}{
		{"90-day certificate, 20 days left", 70 * day, 20 * day, OK},
		{"90-day certificate, 10 days left", 80 * day, 10 * day, Warn},
		{"7-day certificate, 3 days left", 4 * day, 3 * day, OK},
		{"7-day certificate, 2 days left", 5 * day, 2 * day, Warn},
		{"expired", 30 * day, -time.Minute, Fail},
		{"not yet valid", -time.Hour, 30 * day, Fail},
	} {
		r := &Report{}
		checkExpiry(r, now, []*x509.Certificate{leafFor(t, &key.PublicKey, now.Add(-tc.lived), now.Add(tc.left))})
		if len(r.Findings) != 1 || r.Findings[0].Level != tc.want {
			t.Errorf("%s: %+v, want one %s finding", tc.name, r.Findings, tc.want)
		}
	}
}

// TestKeys: a 1024-bit RSA key fails, P-256 passes.
func TestKeys(t *testing.T) {
	now := time.Now()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Skipf("this Go refuses 1024-bit RSA keys: %v", err)
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	r := &Report{}
	checkKeys(r, []*x509.Certificate{leafFor(t, &small.PublicKey, now, now.Add(time.Hour))})
	if r.Verdict != Fail || !strings.Contains(r.Findings[0].Message, "RSA 1024 (too small") {
		t.Errorf("RSA 1024: %+v", r.Findings)
	}
	r = &Report{}
	checkKeys(r, []*x509.Certificate{leafFor(t, &ec.PublicKey, now, now.Add(time.Hour))})
	if r.Verdict != OK || r.Findings[0].Message != "ECDSA P-256" {
		t.Errorf("P-256: %+v", r.Findings)
	}
}

// TestSuiteFlaws: what each class of suite is flagged with; each suite is
// in the table once.
func TestSuiteFlaws(t *testing.T) {
	seen := map[uint16]bool{}
	for _, s := range suites {
		if seen[s.id] {
			t.Errorf("suite 0x%04x twice in the table", s.id)
		}
		seen[s.id] = true
	}
	for id, want := range map[uint16]string{
		0xc02f: "ok ",
		0xc013: "warn not AEAD",
		0x009c: "warn not forward secret",
		0x002f: "warn not AEAD, not forward secret",
		0x000a: "fail 3DES, not forward secret",
		0xc011: "fail RC4",
		0x0003: "fail export-grade, not forward secret",
		0xc010: "fail NULL",
		0x0034: "fail anonymous, not AEAD",
	} {
		s, ok := suiteByID(id)
		if !ok {
			t.Fatalf("suite 0x%04x not in the table", id)
		}
		l, why := s.flaws()
		if got := l.String() + " " + why; got != want {
			t.Errorf("%s: %q, want %q", s.name, got, want)
		}
	}
}
