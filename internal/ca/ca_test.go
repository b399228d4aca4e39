package ca_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"signet/internal/audit"
	"signet/internal/ca"
	"signet/internal/errs"
	"signet/internal/kms"
	"signet/internal/lint"
	"signet/internal/policy"
	"signet/internal/profile"
	"signet/internal/store"
	"signet/internal/store/sqlite"
)

// countingKeys wraps kms so a test can see every signature a CA key makes.
type countingKeys struct {
	kms   *kms.Manager
	signs atomic.Int64
}

type countingSigner struct {
	crypto.Signer
	n *atomic.Int64
}

func (s countingSigner) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	s.n.Add(1)
	return s.Signer.Sign(r, d, o)
}

func (k *countingKeys) Signer(ctx context.Context, uri string) (crypto.Signer, error) {
	s, err := k.kms.Signer(ctx, uri)
	if err != nil {
		return nil, err
	}
	return countingSigner{s, &k.signs}, nil
}

func (k *countingKeys) Drop(uri string)                { k.kms.Drop(uri) }
func (k *countingKeys) Lock(target string)             { k.kms.Lock(target) }
func (k *countingKeys) Locate(uri string) kms.Location { return k.kms.Locate(uri) }
func (k *countingKeys) Unlock(ctx context.Context, target string, secret []byte, force bool) error {
	return k.kms.Unlock(ctx, target, secret, force)
}

type fixture struct {
	ca    *ca.CA
	store store.Store
	keys  *countingKeys
	now   time.Time
}

// newFixture builds a CA on a real SQLite store with encrypted software
// keys, a root and a tls-server authority "web" for example.org.
func newFixture(t testing.TB, linter ca.Linter) *fixture {
	t.Helper()
	ctx := context.Background()
	st, mgr := newStoreAndKeys(t, "file:root.key", "file:web.key")
	if linter == nil {
		linter = lintGate(t)
	}
	f := &fixture{store: st, keys: &countingKeys{kms: mgr}, now: time.Now()}
	f.ca = ca.New(ca.Options{Store: st, Keys: f.keys, Lint: linter, Clock: func() time.Time { return f.now }})
	if _, err := f.ca.CreateRoot(ctx, ca.RootSpec{CommonName: "Test Root", Organization: "Test", KeyURI: "file:root.key", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ca.CreateAuthority(ctx, ca.AuthoritySpec{
		Name: "web", Purpose: profile.TLSServer, KeyURI: "file:web.key", Actor: "test",
		Policy: policy.Policy{DNS: []string{"example.org"}, IP: []string{"10.0.0.0/8"}},
	}); err != nil {
		t.Fatal(err)
	}
	return f
}

// newStoreAndKeys opens a real SQLite store and an encrypted software key
// manager in a temporary directory, with a P-256 key made for each URI.
func newStoreAndKeys(t testing.TB, keyURIs ...string) (*sqlite.Store, *kms.Manager) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	t.Setenv("TEST_PASSPHRASE", "test passphrase")
	mgr := kms.NewManager(kms.Options{Dir: dir, Passphrase: kms.Source("env:TEST_PASSPHRASE")})
	t.Cleanup(func() { mgr.Close() })
	for _, uri := range keyURIs {
		if _, err := mgr.Generate(ctx, uri, kms.ECDSAP256); err != nil {
			t.Fatal(err)
		}
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "signet.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, mgr
}

func newKey(t testing.TB) crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestIssueRecordsAndVerifies(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	iss, err := f.ca.Issue(ctx, ca.Request{
		Authority: "web", PublicKey: newKey(t).Public(), DNSNames: []string{"www.example.org"},
		IPAddresses: []net.IP{net.ParseIP("10.1.1.1")}, Actor: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(iss.DER)
	if err != nil {
		t.Fatal(err)
	}
	root, err := f.ca.Root(ctx)
	if err != nil {
		t.Fatal(err)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	for _, der := range iss.Chain {
		c, _ := x509.ParseCertificate(der)
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: "www.example.org", CurrentTime: f.now}); err != nil {
		t.Fatalf("chain does not verify: %v", err)
	}
	if got := leaf.NotAfter.Sub(f.now); got < ca.DefaultLeafValidity-time.Second || got > ca.DefaultLeafValidity {
		t.Errorf("validity %s, want the 30-day default", got)
	}
	if len(leaf.SerialNumber.Bytes()) < 8 || ca.Serial(leaf.SerialNumber) != iss.Serial {
		t.Errorf("serial %x (%s): want at least 64 random bits, named in lowercase hex", leaf.SerialNumber, iss.Serial)
	}
	rec, err := f.store.Certificate(ctx, iss.Serial)
	if err != nil {
		t.Fatalf("issued certificate not recorded: %v", err)
	}
	if string(rec.DER) != string(iss.DER) || rec.Authority != "web" || rec.Requester != "test" {
		t.Errorf("record does not match the certificate: %+v", rec)
	}
	var issueEvents int
	f.store.Events(ctx, func(e audit.Event) error {
		if e.Kind == "certificate.issue" && e.Subject == iss.Serial {
			issueEvents++
		}
		return nil
	})
	if issueEvents != 1 {
		t.Errorf("%d certificate.issue events for %s, want 1", issueEvents, iss.Serial)
	}
}

func TestIssueRefusals(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	key := newKey(t).Public()
	rsaWeak := weakRSA(t)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	for _, tc := range []struct {
		name string
		req  ca.Request
		kind errs.Kind
	}{
		{"outside policy", ca.Request{Authority: "web", PublicKey: key, DNSNames: []string{"example.com"}}, errs.Rejected},
		{"IP outside policy", ca.Request{Authority: "web", PublicKey: key, IPAddresses: []net.IP{net.ParseIP("192.168.0.1")}}, errs.Rejected},
		{"unknown authority", ca.Request{Authority: "nope", PublicKey: key, DNSNames: []string{"a.example.org"}}, errs.NotFound},
		{"root issues no leaves", ca.Request{Authority: ca.RootName, PublicKey: key, DNSNames: []string{"a.example.org"}}, errs.Rejected},
		{"no key", ca.Request{Authority: "web", DNSNames: []string{"a.example.org"}}, errs.Malformed},
		{"weak RSA key", ca.Request{Authority: "web", PublicKey: rsaWeak, DNSNames: []string{"a.example.org"}}, errs.Rejected},
		{"P-521 key", ca.Request{Authority: "web", PublicKey: p521.Public(), DNSNames: []string{"a.example.org"}}, errs.Rejected},
		{"too long", ca.Request{Authority: "web", PublicKey: key, DNSNames: []string{"a.example.org"}, Validity: 365 * 24 * time.Hour}, errs.Rejected},
		{"authority's own key", ca.Request{Authority: "web", PublicKey: mustSigner(t, f, "file:web.key").Public(), DNSNames: []string{"a.example.org"}}, errs.Rejected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.keys.signs.Load()
			_, err := f.ca.Issue(ctx, tc.req)
			if err == nil || errs.KindOf(err) != tc.kind {
				t.Fatalf("got %v (kind %v), want kind %v", err, errs.KindOf(err), tc.kind)
			}
			if f.keys.signs.Load() != before {
				t.Error("a CA key signed for a refused request")
			}
		})
	}
	if certs, _ := f.store.Certificates(ctx, store.Filter{WithInternal: true}); len(certs) != 0 {
		t.Errorf("refused requests recorded %d certificates", len(certs))
	}
}

// refuseAll stands in for a lint that fails, to show what ca does then.
type refuseAll struct{ checked atomic.Int64 }

func (r *refuseAll) Check([]byte) error {
	if r.checked.Add(1) <= 2 { // the root and the authority in newFixture pass
		return nil
	}
	return errs.New(errs.Rejected, "e_test_lint: refused")
}

func (r *refuseAll) CheckCRL([]byte) error {
	return errs.New(errs.Rejected, "e_test_crl_lint: refused")
}

func TestLintFailureMeansNoSignature(t *testing.T) {
	lr := &refuseAll{}
	f := newFixture(t, lr)
	before := f.keys.signs.Load()
	_, err := f.ca.Issue(context.Background(), ca.Request{Authority: "web", PublicKey: newKey(t).Public(), DNSNames: []string{"a.example.org"}})
	if err == nil || errs.KindOf(err) != errs.Rejected {
		t.Fatalf("got %v, want the lint's refusal", err)
	}
	if f.keys.signs.Load() != before {
		t.Error("the CA key signed a certificate that failed the lint")
	}
	if certs, _ := f.store.Certificates(context.Background(), store.Filter{WithInternal: true}); len(certs) != 0 {
		t.Error("a refused certificate was recorded")
	}
}

func TestAuthorityKeyMustMatch(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	rec, err := f.store.Authority(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	// A CA over the same store whose keys hand out another key for web.key.
	other := ca.New(ca.Options{Store: f.store, Keys: swapKeys{f.keys, rec.KeyURI, newKey(t)}, Lint: lintGate(t)})
	_, err = other.Issue(ctx, ca.Request{Authority: "web", PublicKey: newKey(t).Public(), DNSNames: []string{"a.example.org"}})
	// That authority cannot sign: it is unavailable, alone.
	if err == nil || errs.KindOf(err) != errs.Unavailable || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("got %v, want unavailable: the key does not match the authority certificate", err)
	}
}

type swapKeys struct {
	ca.Keys
	uri string
	key crypto.Signer
}

func (s swapKeys) Signer(ctx context.Context, uri string) (crypto.Signer, error) {
	if uri == s.uri {
		return s.key, nil
	}
	return s.Keys.Signer(ctx, uri)
}

func TestCreateAuthorityRefusals(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		spec ca.AuthoritySpec
		kind errs.Kind
	}{
		{"bad name", ca.AuthoritySpec{Name: "Bad Name", Purpose: profile.VPN, KeyURI: "file:web.key"}, errs.Malformed},
		{"root name", ca.AuthoritySpec{Name: "root", Purpose: profile.VPN, KeyURI: "file:web.key"}, errs.Malformed},
		{"exists", ca.AuthoritySpec{Name: "web", Purpose: profile.VPN, KeyURI: "file:web.key"}, errs.Conflict},
		{"bad policy", ca.AuthoritySpec{Name: "x", Purpose: profile.VPN, KeyURI: "file:web.key", Policy: policy.Policy{IP: []string{"not-a-cidr"}}}, errs.Malformed},
		{"missing key", ca.AuthoritySpec{Name: "y", Purpose: profile.VPN, KeyURI: "file:absent.key"}, errs.NotFound},
		{"self-signed SSH", ca.AuthoritySpec{Name: "z", Purpose: profile.SSHUser, KeyURI: "file:web.key", SelfSigned: true, Policy: policy.Policy{Principals: []string{"alice"}}}, errs.Malformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.ca.CreateAuthority(ctx, tc.spec)
			if errs.KindOf(err) != tc.kind {
				t.Fatalf("got %v (kind %v), want kind %v", err, errs.KindOf(err), tc.kind)
			}
		})
	}
	list, _ := f.store.Authorities(ctx)
	if len(list) != 2 {
		t.Errorf("refusals left %d authorities, want 2", len(list))
	}
}

// TestSelfSignedAuthority: a self-signed authority is its own anchor: its
// certificate is signed by its key and lives like the root, its chain and
// anchor are that certificate, and its leaves verify against it alone,
// not against the root; a root-chained authority's anchor is the root.
func TestSelfSignedAuthority(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	if _, err := f.keys.kms.Generate(ctx, "file:vpn.key", kms.ECDSAP256); err != nil {
		t.Fatal(err)
	}
	rec, err := f.ca.CreateAuthority(ctx, ca.AuthoritySpec{Name: "vpn", Purpose: profile.VPN, KeyURI: "file:vpn.key", SelfSigned: true,
		Policy: policy.Policy{DNS: []string{"example.org"}}, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(rec.CertDER)
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.CheckSignatureFrom(cert); err != nil || rec.Parent != "" || !ca.SelfSigned(rec) {
		t.Fatalf("not self-signed (parent %q): %v", rec.Parent, err)
	}
	if got := cert.NotAfter.Sub(f.now); got < ca.DefaultRootValidity-time.Second || got > ca.DefaultRootValidity {
		t.Errorf("validity %s, want the root's %s", got, ca.DefaultRootValidity)
	}
	chain, err := f.ca.Chain(ctx, "vpn")
	if err != nil || len(chain) != 1 || string(chain[0]) != string(rec.CertDER) {
		t.Errorf("chain of vpn: %d certificates (%v), want its own certificate", len(chain), err)
	}
	root, _ := f.ca.Root(ctx)
	for name, want := range map[string]*x509.Certificate{"vpn": cert, "web": root} {
		if anchor, err := f.ca.Anchor(ctx, name); err != nil || !anchor.Equal(want) {
			t.Errorf("anchor of %s: %v, want %s", name, err, want.Subject)
		}
	}
	iss, err := f.ca.Issue(ctx, ca.Request{Authority: "vpn", PublicKey: newKey(t).Public(), DNSNames: []string{"vpn.example.org"}, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(iss.DER)
	for _, tc := range []struct {
		anchor *x509.Certificate
		ok     bool
	}{{cert, true}, {root, false}} {
		pool := x509.NewCertPool()
		pool.AddCert(tc.anchor)
		_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "vpn.example.org", CurrentTime: f.now})
		if (err == nil) != tc.ok {
			t.Errorf("leaf of vpn against %s: %v, want ok=%v", tc.anchor.Subject, err, tc.ok)
		}
	}
}

func lintGate(t testing.TB) *lint.Gate {
	g, err := lint.New()
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func mustSigner(t testing.TB, f *fixture, uri string) crypto.Signer {
	s, err := f.keys.kms.Signer(context.Background(), uri)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func weakRSA(t testing.TB) crypto.PublicKey {
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	return k.Public()
}

// TestDiscardedSignatureIsAudited: when the store refuses a certificate
// the CA key has already signed (here: an ACME order finalized meanwhile
// by another node), nothing is issued and the audit log says the key
// signed something that was discarded.
func TestDiscardedSignatureIsAudited(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	acct := store.ACMEAccount{ID: "a1", Authority: "web", KeyID: "k1", Key: []byte(`{"kty":"EC"}`), Status: store.StatusValid, CreatedAt: f.now}
	if err := f.store.CreateACMEAccount(ctx, acct, audit.Event{}); err != nil {
		t.Fatal(err)
	}
	id := store.ACMEIdentifier{Type: "dns", Value: "www.example.org"}
	order := store.ACMEOrder{ID: "o1", Authority: "web", AccountID: "a1", Status: store.StatusReady, Expires: f.now.Add(time.Hour),
		Identifiers: []store.ACMEIdentifier{id}, Profile: "default", CreatedAt: f.now,
		Authzs: []store.ACMEAuthz{{Identifier: id, Status: store.StatusValid, Challenges: []store.ACMEChallenge{{Type: "http-01", Token: "t", Status: store.StatusValid}}}}}
	if err := f.store.CreateACMEOrder(ctx, order, audit.Event{}); err != nil {
		t.Fatal(err)
	}
	stale, _ := f.store.ACMEOrder(ctx, "o1")
	stale.Status = store.StatusValid
	stale.Version-- // another node moved the order on since this one read it
	_, err := f.ca.Issue(ctx, ca.Request{Authority: "web", PublicKey: newKey(t).Public(), DNSNames: []string{"www.example.org"}, Rider: store.FinalizeOrder(stale)})
	if errs.KindOf(err) != errs.Conflict {
		t.Fatalf("got %v, want a conflict", err)
	}
	if certs, _ := f.store.Certificates(ctx, store.Filter{WithInternal: true}); len(certs) != 0 {
		t.Fatalf("%d certificates recorded for a refused finalize", len(certs))
	}
	if n := countEvents(t, f.store, audit.KindCertificateDiscard); n != 1 {
		t.Fatalf("%d certificate.discard events, want 1", n)
	}
	if _, err := audit.Verify(ctx, f.store); err != nil {
		t.Fatalf("audit log after a discard: %v", err)
	}
}

// countEvents counts the audit events of one kind.
func countEvents(t *testing.T, st store.Store, kind string) int {
	t.Helper()
	n := 0
	if err := st.Events(context.Background(), func(e audit.Event) error {
		if e.Kind == kind {
			n++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

// refusingStore records no certificate, as a store that is down would.
type refusingStore struct{ store.Store }

func (refusingStore) RecordCertificate(context.Context, store.Certificate, audit.Event) error {
	return errs.New(errs.Unavailable, "store refuses certificates")
}

// TestDiscardedResponderIsAudited: the OCSP responder certificate goes
// through the same record step as a leaf, so a signature the store then
// refuses is in the audit log too.
func TestDiscardedResponderIsAudited(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	gate, err := lint.New()
	if err != nil {
		t.Fatal(err)
	}
	c := ca.New(ca.Options{Store: refusingStore{f.store}, Keys: f.keys, Lint: gate, Clock: func() time.Time { return f.now }})
	if _, err := c.IssueOCSPResponder(ctx, "web", time.Hour, "test"); errs.KindOf(err) != errs.Unavailable {
		t.Fatalf("got %v, want the store's refusal", err)
	}
	if n := countEvents(t, f.store, audit.KindCertificateDiscard); n != 1 {
		t.Fatalf("%d certificate.discard events, want 1", n)
	}
}

// refusingAuthorities records no authority, as a store that is down would.
type refusingAuthorities struct{ store.Store }

func (refusingAuthorities) CreateAuthority(context.Context, store.Authority, audit.Event) error {
	return errs.New(errs.Unavailable, "store refuses authorities")
}

// TestDiscardedCACertificatesAreAudited: a root or authority certificate
// the root key signed and the store refused (here: a second root, as a
// second init racing the first would sign; and a store that is down) is
// accounted for by a certificate.discard event, like a leaf.
func TestDiscardedCACertificatesAreAudited(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	discards := func() []audit.Event {
		t.Helper()
		var out []audit.Event
		if err := f.store.Events(ctx, func(e audit.Event) error {
			if e.Kind == audit.KindCertificateDiscard {
				out = append(out, e)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if _, err := f.ca.CreateRoot(ctx, ca.RootSpec{CommonName: "Second Root", KeyURI: "file:root.key", Actor: "test"}); err == nil {
		t.Fatal("a second root was recorded")
	}
	got := discards()
	if len(got) != 1 || got[0].Authority != ca.RootName || got[0].Actor != "test" || len(got[0].Subject) < 16 ||
		!strings.Contains(string(got[0].Data), `"sha256"`) || !strings.Contains(string(got[0].Data), "reason") {
		t.Fatalf("after a refused root: %+v", got)
	}

	gate, err := lint.New()
	if err != nil {
		t.Fatal(err)
	}
	c := ca.New(ca.Options{Store: refusingAuthorities{f.store}, Keys: f.keys, Lint: gate, Clock: func() time.Time { return f.now }})
	_, err = c.CreateAuthority(ctx, ca.AuthoritySpec{Name: "api", Purpose: profile.TLSServer, KeyURI: "file:web.key", Actor: "test",
		Policy: policy.Policy{DNS: []string{"example.org"}}})
	if errs.KindOf(err) != errs.Unavailable {
		t.Fatalf("got %v, want the store's refusal", err)
	}
	got = discards()
	if len(got) != 2 || got[1].Authority != "api" || !strings.Contains(string(got[1].Data), "store refuses authorities") {
		t.Fatalf("after a refused authority: %+v", got)
	}
	if _, err := audit.Verify(ctx, f.store); err != nil {
		t.Fatalf("audit log after the discards: %v", err)
	}
}

// TestDefaultRootName: a root made without a name is named after its key,
// and an authority's default name extends the root's.
func TestDefaultRootName(t *testing.T) {
	ctx := context.Background()
	st, mgr := newStoreAndKeys(t, "file:root.key", "file:vpn.key")
	c := ca.New(ca.Options{Store: st, Keys: mgr, Lint: lintGate(t)})
	if _, err := c.CreateRoot(ctx, ca.RootSpec{Organization: "host1", KeyURI: "file:root.key"}); err != nil {
		t.Fatal(err)
	}
	root, err := c.Root(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("signet root %x", root.SubjectKeyId[:4])
	if root.Subject.CommonName != want || len(want) != len("signet root ")+8 || !slices.Equal(root.Subject.Organization, []string{"host1"}) {
		t.Errorf("root subject %s, want CN=%s,O=host1", root.Subject, want)
	}
	if _, err := c.CreateAuthority(ctx, ca.AuthoritySpec{Name: "vpn", Purpose: profile.VPN, KeyURI: "file:vpn.key", Policy: policy.Policy{DNS: []string{"corp"}}}); err != nil {
		t.Fatal(err)
	}
	chain, err := c.Chain(ctx, "vpn")
	if err != nil {
		t.Fatal(err)
	}
	vpn, err := x509.ParseCertificate(chain[0])
	if err != nil {
		t.Fatal(err)
	}
	if vpn.Subject.CommonName != want+" vpn" || !slices.Equal(vpn.Subject.Organization, []string{"host1"}) {
		t.Errorf("authority subject %s, want CN=%s vpn,O=host1", vpn.Subject, want)
	}
}
