package lint

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"

	"signet/internal/errs"
	"signet/internal/profile"
)

var (
	gateOnce sync.Once
	gate     *Gate
	gateErr  error
)

func testGate(t testing.TB) *Gate {
	t.Helper()
	gateOnce.Do(func() { gate, gateErr = New() })
	if gateErr != nil {
		t.Fatal(gateErr)
	}
	return gate
}

type testKey struct {
	name string
	key  crypto.Signer
}

var (
	keysOnce sync.Once
	allKeys  []testKey
)

func keys(t testing.TB) []testKey {
	keysOnce.Do(func() {
		p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		r, _ := rsa.GenerateKey(rand.Reader, 2048)
		_, ed, _ := ed25519.GenerateKey(rand.Reader)
		allKeys = []testKey{{"p256", p256}, {"p384", p384}, {"rsa2048", r}, {"ed25519", ed}}
	})
	return allKeys
}

func nextSerial() *big.Int {
	// A realistic serial: 64+ bits of entropy is what BR 7.1 asks for.
	b := make([]byte, 16)
	rand.Read(b)
	b[0] &= 0x7f
	b[0] |= 0x01
	return new(big.Int).SetBytes(b)
}

// chain is a root and an issuing authority for one purpose, made from
// profile templates with test keys (tests may sign; production code here
// does not).
type chain struct {
	root, issuer       *x509.Certificate
	rootDER, issuerDER []byte
	issuerKey          crypto.Signer
}

func create(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) ([]byte, *x509.Certificate) {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return der, c
}

// leafPointers are what signet's leaves carry; without them the
// CRL/AIA lints fail.
var leafPointers = profile.Pointers{
	CRL: "http://127.0.0.1:8080/crl/test/3.crl", OCSP: "http://127.0.0.1:8080/ocsp/test", IssuerURL: "http://127.0.0.1:8080/ca/test.crt",
}

func newChain(t testing.TB, p profile.Purpose, key crypto.Signer, now time.Time) chain {
	t.Helper()
	rt, err := profile.RootTemplate(profile.CA{CommonName: "Signet Test Root", Organization: "Signet Test", PublicKey: key.Public(),
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(20 * 365 * 24 * time.Hour), SerialNumber: nextSerial(), MaxPathLen: -1})
	if err != nil {
		t.Fatal(err)
	}
	rootDER, root := create(t, rt, rt, key.Public(), key)
	at, err := profile.AuthorityTemplate(p, profile.CA{CommonName: "Signet Test " + string(p) + " CA", Organization: "Signet Test", PublicKey: key.Public(),
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(10 * 365 * 24 * time.Hour), SerialNumber: nextSerial(), MaxPathLen: -1,
		Revocation: profile.Pointers{CRL: "http://127.0.0.1:8080/crl/root/0.crl", IssuerURL: "http://127.0.0.1:8080/ca/root.crt"}})
	if err != nil {
		t.Fatal(err)
	}
	issuerDER, issuer := create(t, at, root, key.Public(), key)
	return chain{root: root, issuer: issuer, rootDER: rootDER, issuerDER: issuerDER, issuerKey: key}
}

// leafRequests are typical requests of every purpose and usage.
func leafRequests() map[string]struct {
	p profile.Purpose
	l profile.Leaf
} {
	type req = struct {
		p profile.Purpose
		l profile.Leaf
	}
	return map[string]req{
		"tls-server":     {profile.TLSServer, profile.Leaf{DNSNames: []string{"www.example.org", "api.internal"}, IPAddresses: []net.IP{net.ParseIP("10.1.2.3")}}},
		"tls-server-ip":  {profile.TLSServer, profile.Leaf{IPAddresses: []net.IP{net.ParseIP("2001:db8::7")}}},
		"tls-client":     {profile.TLSClient, profile.Leaf{CommonName: "alice", EmailAddresses: []string{"alice@example.org"}}},
		"tls-client-dns": {profile.TLSClient, profile.Leaf{DNSNames: []string{"backup.corp"}}},
		"xmpp":           {profile.XMPP, profile.Leaf{DNSNames: []string{"example.org", "xmpp1.example.org"}}},
		"vpn-server":     {profile.VPN, profile.Leaf{Usage: profile.Server, DNSNames: []string{"vpn.corp"}}},
		"vpn-client":     {profile.VPN, profile.Leaf{Usage: profile.Client, CommonName: "john.doe"}},
		"libvirt-server": {profile.Libvirt, profile.Leaf{Usage: profile.Server, DNSNames: []string{"kvm1.corp"}, IPAddresses: []net.IP{net.ParseIP("192.168.1.10")}}},
		"libvirt-client": {profile.Libvirt, profile.Leaf{Usage: profile.Client, CommonName: "admin"}},
	}
}

// keyFits reports whether the purpose's profile accepts the key: the
// libvirt profile takes RSA keys only.
func keyFits(p profile.Purpose, k testKey) bool {
	_, isRSA := k.key.Public().(*rsa.PublicKey)
	return p != profile.Libvirt || isRSA
}

// TestProfilesPass signs every profile's templates (root, authority and
// leaves) with every key type and requires the gate to accept them.
// It does so today and in 2030, because zlint applies each BR rule from its
// effective date on (the server lifetime limit drops to 47 days in 2029).
func TestProfilesPass(t *testing.T) {
	g := testGate(t)
	for _, now := range []time.Time{time.Now(), time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} {
		for _, k := range keys(t) {
			testProfilesPass(t, g, now, k)
		}
	}
}

func testProfilesPass(t *testing.T, g *Gate, now time.Time, k testKey) {
	chains := map[profile.Purpose]chain{}
	for name, r := range leafRequests() {
		if !keyFits(r.p, k) {
			continue
		}
		t.Run(now.Format("2006")+"/"+k.name+"/"+name, func(t *testing.T) {
			ch, ok := chains[r.p]
			if !ok {
				ch = newChain(t, r.p, k.key, now)
				chains[r.p] = ch
				if err := g.Check(ch.rootDER); err != nil {
					t.Errorf("root: %v", err)
				}
				if err := g.Check(ch.issuerDER); err != nil {
					t.Errorf("%s authority: %v", r.p, err)
				}
			}
			l := r.l
			l.PublicKey = k.key.Public()
			l.NotBefore = now.Add(-time.Minute)
			l.NotAfter = now.Add(30 * 24 * time.Hour)
			l.SerialNumber = nextSerial()
			l.Revocation = leafPointers
			tmpl, err := profile.LeafTemplate(r.p, l)
			if err != nil {
				t.Fatal(err)
			}
			der, _ := create(t, tmpl, ch.issuer, l.PublicKey, ch.issuerKey)
			if err := g.Check(der); err != nil {
				t.Errorf("leaf: %v", err)
			}
		})
	}
}

// TestBadCertificatesRefused builds certificates that break RFC 5280 or the
// BRs on purpose and requires the gate to refuse each, naming the lint.
func TestBadCertificatesRefused(t *testing.T) {
	g := testGate(t)
	now := time.Now()
	key := keys(t)[0].key
	ch := newChain(t, profile.TLSServer, key, now)
	good := func() *x509.Certificate {
		tmpl, err := profile.LeafTemplate(profile.TLSServer, profile.Leaf{DNSNames: []string{"www.example.org"}, PublicKey: key.Public(),
			NotBefore: now, NotAfter: now.Add(30 * 24 * time.Hour), SerialNumber: nextSerial(), Revocation: leafPointers})
		if err != nil {
			t.Fatal(err)
		}
		return tmpl
	}
	tests := []struct {
		name   string
		mutate func(*x509.Certificate)
		lint   string
	}{
		{"server leaf without SAN", func(c *x509.Certificate) { c.DNSNames = nil }, "e_ext_san_missing"},
		{"zero serial", func(c *x509.Certificate) { c.SerialNumber = big.NewInt(0) }, "e_serial_number_not_positive"},
		{"CA without keyCertSign", func(c *x509.Certificate) {
			c.IsCA = true
			c.KeyUsage = x509.KeyUsageDigitalSignature
			c.ExtKeyUsage = nil
		}, "e_ca_key_cert_sign_not_set"},
		{"leaf with keyCertSign", func(c *x509.Certificate) { c.KeyUsage |= x509.KeyUsageCertSign }, "e_sub_cert_key_usage_cert_sign_bit_set"},
		// A fixed NotBefore: zlint picks the lifetime rule in force on that date.
		{"server leaf valid for two years", func(c *x509.Certificate) {
			c.NotBefore = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
			c.NotAfter = c.NotBefore.Add(2 * 365 * 24 * time.Hour)
		}, "e_server_cert_valid_time_longer_than_200_days"},
		{"CN not in SAN", func(c *x509.Certificate) { c.Subject.CommonName = "other.example.org" }, "e_subject_common_name_not_exactly_from_san"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tmpl := good()
			tc.mutate(tmpl)
			der, _ := create(t, tmpl, ch.issuer, key.Public(), key)
			err := g.Check(der)
			if errs.KindOf(err) != errs.Rejected {
				t.Fatalf("err = %v, want rejected", err)
			}
			var fs Findings
			if !errors.As(err, &fs) {
				t.Fatalf("no Findings in %v", err)
			}
			found := false
			for _, f := range fs {
				found = found || f.Lint == tc.lint
			}
			if !found || !strings.Contains(err.Error(), tc.lint) {
				t.Errorf("err = %v, want it to name %s", err, tc.lint)
			}
		})
	}
	if err := g.Check([]byte("not a certificate")); errs.KindOf(err) != errs.Rejected {
		t.Errorf("garbage: %v", err)
	}
	// The untouched certificate passes: the refusals above are the mutations'.
	der, _ := create(t, good(), ch.issuer, key.Public(), key)
	if err := g.Check(der); err != nil {
		t.Errorf("good certificate: %v", err)
	}
}

func TestNewRefusesUnknownExclusion(t *testing.T) {
	saved := Excluded
	defer func() { Excluded = saved }()
	Excluded = append(append([]Exclusion(nil), saved...), Exclusion{"e_no_such_lint", "typo"})
	if _, err := New(); err == nil || !strings.Contains(err.Error(), "e_no_such_lint") {
		t.Errorf("New with an unknown exclusion: %v", err)
	}
}

func TestExcludedDocumented(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range Excluded {
		if e.Reason == "" || seen[e.Name] {
			t.Errorf("exclusion %q: empty reason or listed twice", e.Name)
		}
		seen[e.Name] = true
	}
	for _, b := range testGate(t).lints {
		if seen[b.meta.Name] {
			t.Errorf("excluded lint %s still runs", b.meta.Name)
		}
	}
	for _, b := range testGate(t).crlLints {
		if seen[b.meta.Name] {
			t.Errorf("excluded CRL lint %s still runs", b.meta.Name)
		}
	}
}

// TestConcurrent runs the gate from many goroutines (run with -race).
func TestConcurrent(t *testing.T) {
	g := testGate(t)
	now := time.Now()
	key := keys(t)[0].key
	ch := newChain(t, profile.XMPP, key, now)
	tmpl, err := profile.LeafTemplate(profile.XMPP, profile.Leaf{DNSNames: []string{"example.org"}, PublicKey: key.Public(),
		NotBefore: now, NotAfter: now.Add(24 * time.Hour), SerialNumber: nextSerial(), Revocation: leafPointers})
	if err != nil {
		t.Fatal(err)
	}
	der, _ := create(t, tmpl, ch.issuer, key.Public(), key)
	bad := append([]byte(nil), der...)
	bad = bad[:len(bad)-1]
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				if err := g.Check(der); err != nil {
					t.Error(err)
					return
				}
				if g.Check(bad) == nil {
					t.Error("truncated certificate accepted")
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkCheck measures the gate on a typical XMPP leaf of each key type
// (µs/op is the time per certificate; RunParallel uses every CPU).
func BenchmarkCheck(b *testing.B) {
	g := testGate(b)
	now := time.Now()
	for _, k := range keys(b) {
		b.Run(k.name, func(b *testing.B) {
			ch := newChain(b, profile.XMPP, k.key, now)
			tmpl, err := profile.LeafTemplate(profile.XMPP, profile.Leaf{DNSNames: []string{"example.org", "xmpp1.example.org"}, PublicKey: k.key.Public(),
				NotBefore: now, NotAfter: now.Add(30 * 24 * time.Hour), SerialNumber: nextSerial(), Revocation: leafPointers})
			if err != nil {
				b.Fatal(err)
			}
			der, _ := create(b, tmpl, ch.issuer, k.key.Public(), k.key)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := g.Check(der); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkNew(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := New(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSameAsZlint: the gate's lints, built once, give for every lint the
// status zlint's own Execute gives (a fresh instance per certificate), on
// leaves of every purpose and key type and on the refused mutations.
func TestSameAsZlint(t *testing.T) {
	g := testGate(t)
	config := g.registry.GetConfiguration()
	now := time.Now()
	var ders [][]byte
	for _, k := range keys(t) {
		for name, r := range leafRequests() {
			if !keyFits(r.p, k) {
				continue
			}
			ch := newChain(t, r.p, k.key, now)
			l := r.l
			l.PublicKey, l.NotBefore, l.NotAfter, l.SerialNumber, l.Revocation = k.key.Public(), now, now.Add(30*24*time.Hour), nextSerial(), leafPointers
			tmpl, err := profile.LeafTemplate(r.p, l)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			der, _ := create(t, tmpl, ch.issuer, k.key.Public(), k.key)
			ders = append(ders, der, ch.rootDER, ch.issuerDER)
			tmpl.SerialNumber, tmpl.DNSNames, tmpl.KeyUsage = big.NewInt(0), nil, tmpl.KeyUsage|x509.KeyUsageCertSign
			bad, _ := create(t, tmpl, ch.issuer, k.key.Public(), k.key)
			ders = append(ders, bad)
		}
	}
	differ := 0
	for _, der := range ders {
		c, err := zx509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range g.lints {
			ours, theirs := b.run(c), b.meta.Execute(c, config)
			// Details are compared by presence: some lints list map keys,
			// in an order that changes from run to run.
			if ours.Status != theirs.Status || (ours.Details == "") != (theirs.Details == "") {
				differ++
				t.Errorf("%s: gate says %v %q, zlint %v %q", b.meta.Name, ours.Status, ours.Details, theirs.Status, theirs.Details)
			}
		}
	}
	if len(ders) < 40 || len(g.lints) < 100 {
		t.Fatalf("compared %d certificates with %d lints: too few to mean anything", len(ders), len(g.lints))
	}
	t.Logf("%d certificates × %d lints, %d differences", len(ders), len(g.lints), differ)
}

// TestWaiverNarrow: the keyUsage/extKeyUsage waiver lets libvirt's RSA
// client certificates through and nothing else with keyEncipherment and
// clientAuth alone.
func TestWaiverNarrow(t *testing.T) {
	g := testGate(t)
	now := time.Now()
	const lint = "e_key_usage_and_extended_key_usage_inconsistent"
	for _, k := range keys(t) {
		_, isRSA := k.key.Public().(*rsa.PublicKey)
		ch := newChain(t, profile.TLSClient, k.key, now)
		tmpl, err := profile.LeafTemplate(profile.TLSClient, profile.Leaf{CommonName: "admin", PublicKey: k.key.Public(),
			NotBefore: now, NotAfter: now.Add(24 * time.Hour), SerialNumber: nextSerial(), Revocation: leafPointers})
		if err != nil {
			t.Fatal(err)
		}
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
		der, _ := create(t, tmpl, ch.issuer, k.key.Public(), k.key)
		err = g.Check(der)
		if isRSA && err != nil {
			t.Errorf("%s: libvirt-style client certificate refused: %v", k.name, err)
		}
		if !isRSA && (err == nil || !strings.Contains(err.Error(), lint)) {
			t.Errorf("%s: keyEncipherment with a non-RSA key: %v, want %s", k.name, err, lint)
		}
		if isRSA {
			tmpl.KeyUsage |= x509.KeyUsageDataEncipherment
			tmpl.SerialNumber = nextSerial()
			der, _ := create(t, tmpl, ch.issuer, k.key.Public(), k.key)
			if err := g.Check(der); err == nil || !strings.Contains(err.Error(), lint) {
				t.Errorf("%s: dataEncipherment in a client certificate: %v, want %s", k.name, err, lint)
			}
		}
	}
}

func TestNewRefusesUnknownWaiver(t *testing.T) {
	saved := Waived
	defer func() { Waived = saved }()
	Waived = append(append([]Waiver(nil), saved...), Waiver{"e_no_such_lint", "typo", nil})
	if _, err := New(); err == nil || !strings.Contains(err.Error(), "e_no_such_lint") {
		t.Errorf("New with an unknown waiver: %v", err)
	}
}
