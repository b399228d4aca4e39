package revocation

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"signet/internal/ca"
	"signet/internal/kms"
	"signet/internal/kms/kmstest"
	"signet/internal/lint"
	"signet/internal/policy"
	"signet/internal/profile"
	"signet/internal/store/postgres"
	"signet/internal/store/postgres/pgtest"
)

// node is one signet node of a shared store: its own connection pool, CA
// and revocation service, the keys shared (as a network HSM would be).
type node struct {
	st  *postgres.Store
	ca  *ca.CA
	svc *Service
	srv *httptest.Server
}

func newNode(t *testing.T, url string, keys *kms.Manager) *node {
	t.Helper()
	st, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	gate, err := lint.New()
	if err != nil {
		t.Fatal(err)
	}
	n := &node{st: st, ca: ca.New(ca.Options{Store: st, Keys: keys, Lint: gate, BaseURL: base})}
	n.svc = New(Options{CA: n.ca, Store: st, Shared: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	n.srv = httptest.NewServer(n.svc.Handler())
	t.Cleanup(n.srv.Close)
	return n
}

// testKeys is a key manager holding the root's and web's keys.
func testKeys(t *testing.T) *kms.Manager { return testKeysIn(t, t.TempDir()) }

// testKeysIn is testKeys with the key files in dir.
func testKeysIn(t *testing.T, dir string) *kms.Manager {
	t.Helper()
	t.Setenv("TEST_PASSPHRASE", "test passphrase")
	keys := kms.NewManager(kms.Options{Dir: dir, Passphrase: kms.Source("env:TEST_PASSPHRASE")})
	t.Cleanup(func() { keys.Close() })
	for _, uri := range []string{"file:root.key", "file:web.key"} {
		if _, err := keys.Generate(context.Background(), uri, kms.ECDSAP256); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// webAuthority makes, through n, the root and the TLS server authority
// "web", and returns web's certificate.
func webAuthority(t *testing.T, n *node) *x509.Certificate {
	t.Helper()
	ctx := context.Background()
	if _, err := n.ca.CreateRoot(ctx, ca.RootSpec{CommonName: "Test Root", KeyURI: "file:root.key"}); err != nil {
		t.Fatal(err)
	}
	rec, err := n.ca.CreateAuthority(ctx, ca.AuthoritySpec{Name: "web", Purpose: profile.TLSServer, KeyURI: "file:web.key",
		Policy: policy.Policy{DNS: []string{"*"}}})
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := x509.ParseCertificate(rec.CertDER)
	if err != nil {
		t.Fatal(err)
	}
	return issuer
}

// issue issues count certificates of "web" for a.example.org through n.
func (n *node) issue(t *testing.T, count int) []*x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var certs []*x509.Certificate
	for range count {
		iss, err := n.ca.Issue(context.Background(), ca.Request{Authority: "web", PublicKey: key.Public(), DNSNames: []string{"a.example.org"}})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(iss.DER)
		certs = append(certs, c)
	}
	return certs
}

func (n *node) refresh(t *testing.T) {
	t.Helper()
	if err := n.svc.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// ocspStatus asks n about c: the status, or -1 for tryLater, -2 for unauthorized.
func (n *node) ocspStatus(t *testing.T, c, issuer *x509.Certificate) int {
	t.Helper()
	f := &fixture{srv: n.srv}
	_, der := f.post(t, ocspRequest(t, c, issuer, crypto.SHA256))
	switch {
	case bytes.Equal(der, ocsp.TryLaterErrorResponse):
		return -1
	case bytes.Equal(der, ocsp.UnauthorizedErrorResponse):
		return -2
	}
	r, err := ocsp.ParseResponseForCert(der, c, issuer)
	if err != nil {
		t.Fatalf("OCSP response: %v", err)
	}
	return r.Status
}

func (n *node) crlDER(t *testing.T, u string) []byte {
	t.Helper()
	f := &fixture{srv: n.srv}
	resp, err := n.srv.Client().Get(f.local(u))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	der, _ := io.ReadAll(resp.Body)
	return der
}

// TestSharedStore: two nodes on one PostgreSQL database. One leads the CRL
// and OCSP jobs and alone signs CRLs and publishes; the other serves what
// it published (TestSharedFollowerSignsUnwalked: and signs what it did
// not), never answering "good" for a certificate its mirror knows is
// revoked; when the leader goes, the other takes over.
func TestSharedStore(t *testing.T) {
	ctx := context.Background()
	url, keys := pgtest.URL(t), testKeys(t)
	a, b := newNode(t, url, keys), newNode(t, url, keys)
	issuer := webAuthority(t, a)
	a.refresh(t) // a asks first: a leads
	b.refresh(t)
	if !a.svc.leadingCRL.Load() || !a.svc.leadingOCSP.Load() || b.svc.leadingCRL.Load() || b.svc.leadingOCSP.Load() {
		t.Fatalf("leaders: a %v/%v, b %v/%v; want a alone", a.svc.leadingCRL.Load(), a.svc.leadingOCSP.Load(),
			b.svc.leadingCRL.Load(), b.svc.leadingOCSP.Load())
	}

	// Issued through b: b knows it, but has no responder before its first
	// miss.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	iss, err := b.ca.Issue(ctx, ca.Request{Authority: "web", PublicKey: key.Public(), DNSNames: []string{"a.example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(iss.DER)
	b.refresh(t)
	if got := b.ocspStatus(t, c, issuer); got != -1 {
		t.Errorf("follower before the leader signed, its first miss: status %d, want tryLater", got)
	}
	a.refresh(t) // the leader's poll
	for name, n := range map[string]*node{"leader": a, "follower": b} {
		if got := n.ocspStatus(t, c, issuer); got != ocsp.Good {
			t.Errorf("%s: status %d, want good", name, got)
		}
	}
	stranger := *c
	stranger.SerialNumber = bigOne()
	if got := b.ocspStatus(t, &stranger, issuer); got != -2 {
		t.Errorf("follower, serial never issued: %d, want unauthorized", got)
	}

	// Revoked through b: b stops answering good at once, the leader's next
	// round re-signs, and both nodes serve the same CRL.
	if _, err := b.ca.Revoke(ctx, ca.Serial(c.SerialNumber), 1, "test"); err != nil {
		t.Fatal(err)
	}
	b.refresh(t)
	if got := b.ocspStatus(t, c, issuer); got == ocsp.Good {
		t.Errorf("follower after the revocation: still good")
	}
	a.refresh(t)
	b.refresh(t)
	for name, n := range map[string]*node{"leader": a, "follower": b} {
		if got := n.ocspStatus(t, c, issuer); got != ocsp.Revoked {
			t.Errorf("%s after the revocation: status %d, want revoked", name, got)
		}
	}
	crlA, crlB := a.crlDER(t, c.CRLDistributionPoints[0]), b.crlDER(t, c.CRLDistributionPoints[0])
	if !bytes.Equal(crlA, crlB) {
		t.Errorf("the nodes serve different CRLs for %s", c.CRLDistributionPoints[0])
	}
	l, err := x509.ParseRevocationList(crlB)
	if err != nil || !lists(l, c.SerialNumber) || l.CheckSignatureFrom(issuer) != nil {
		t.Fatalf("follower's CRL: %v; want it signed and listing %x", err, c.SerialNumber)
	}
	// The whole CRL too: the leader signed it, the follower serves it.
	wholeA, wholeB := a.crlDER(t, ca.WholeCRLURL(base, "web")), b.crlDER(t, ca.WholeCRLURL(base, "web"))
	if w, err := x509.ParseRevocationList(wholeB); err != nil || w.CheckSignatureFrom(issuer) != nil || !bytes.Equal(wholeA, wholeB) {
		t.Errorf("follower's whole CRL: %v; want the leader's, signed", err)
	}

	// The leader dies (its sessions end): b takes over at a following
	// round. PostgreSQL frees a session's locks when its backend has
	// exited, which can come a little after the client has hung up, so b
	// gets a few rounds.
	a.srv.Close()
	a.st.Close()
	for round := 0; ; round++ {
		b.refresh(t)
		if b.svc.leadingCRL.Load() && b.svc.leadingOCSP.Load() {
			break
		}
		if round == 100 {
			t.Fatal("b did not take over in 100 rounds, 5 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	iss2, err := b.ca.Issue(ctx, ca.Request{Authority: "web", PublicKey: key.Public(), DNSNames: []string{"b.example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := x509.ParseCertificate(iss2.DER)
	b.refresh(t)
	if got := b.ocspStatus(t, c2, issuer); got != ocsp.Good {
		t.Errorf("new leader: status %d, want good", got)
	}
}

// TestSharedLeaderWalks: certificates issued before the leader started,
// which no change brings to its attention, are pre-signed a batch per
// refresh until every one is published, and the follower serves them
// (it signs none of its own: it has no responder, nothing having missed).
func TestSharedLeaderWalks(t *testing.T) {
	ctx := context.Background()
	defer func(n int) { presignBatch = n }(presignBatch)
	presignBatch = 2
	url, keys := pgtest.URL(t), testKeys(t)
	a, b := newNode(t, url, keys), newNode(t, url, keys)
	issuer := webAuthority(t, a)
	certs := b.issue(t, 5)
	walked := func() int { // certificates with both responses published
		n := 0
		for _, c := range certs {
			both := true
			for _, h := range []string{"sha1", "sha256"} {
				_, err := b.st.PublishedOCSP(ctx, "web", h, ca.Serial(c.SerialNumber))
				both = both && err == nil
			}
			if both {
				n++
			}
		}
		return n
	}
	// a starts after the issuances: its first refresh sees no change. The
	// walk publishes at most a batch (2) per refresh and, round after
	// round, all five, which the follower then serves. (The walk also
	// meets a's own responder certificate: the count is bounded, not
	// exact.)
	prev := 0
	for round := 1; prev < 5; round++ {
		if round > 4 {
			t.Fatalf("after %d refreshes %d of 5 are published", round-1, prev)
		}
		a.refresh(t)
		got := walked()
		if got < prev || got > min(5, round*presignBatch) {
			t.Fatalf("after the leader's refresh %d: %d of 5 published (%d before), want at most %d", round, got, prev, round*presignBatch)
		}
		prev = got
	}
	b.refresh(t)
	for _, c := range certs {
		if got := b.ocspStatus(t, c, issuer); got != ocsp.Good {
			t.Fatalf("follower: status %d for %x, want good", got, c.SerialNumber)
		}
	}

	// The leader dies; c, a new node (a restart: nothing cached), leads
	// the next pass. What a published and is still fresh is not signed
	// again; a certificate revoked meanwhile is.
	published := func() map[string]int64 {
		v := map[string]int64{}
		for _, c := range certs {
			for _, h := range []string{"sha1", "sha256"} {
				d, err := b.st.PublishedOCSP(ctx, "web", h, ca.Serial(c.SerialNumber))
				if err != nil {
					t.Fatal(err)
				}
				v[h+" "+ca.Serial(c.SerialNumber)] = d.Version
			}
		}
		return v
	}
	before := published()
	a.st.Close()
	revoked := ca.Serial(certs[3].SerialNumber)
	if _, err := b.ca.Revoke(ctx, revoked, 1, "test"); err != nil {
		t.Fatal(err)
	}
	c := newNode(t, url, keys)
	for range 4 {
		c.refresh(t)
	}
	after := published()
	for k, v := range after {
		if strings.HasSuffix(k, " "+revoked) == (v == before[k]) {
			t.Errorf("after the new leader's pass, the response %s is at version %d (was %d): want only %s's signed again", k, v, before[k], revoked)
		}
	}
	b.refresh(t)
	if got := b.ocspStatus(t, certs[3], issuer); got != ocsp.Revoked {
		t.Errorf("the follower answers %d for the certificate revoked while no node led, want revoked", got)
	}
}

// TestSharedFollowerSignsUnwalked: on a home whose certificates no walk
// has reached (issued before any node ran, a walk of one per refresh), a
// follower answers for every one at once, good or revoked as the store
// says, with responses that verify against the issuer (and with OpenSSL):
// after the first miss, which gets tryLater and has the follower's
// refresh issue it a responder of its own, recorded like any certificate.
// A certificate revoked after the leader published it as good is answered
// revoked.
func TestSharedFollowerSignsUnwalked(t *testing.T) {
	openssl := kmstest.RequireTool(t, "openssl")
	ctx := context.Background()
	defer func(n int) { presignBatch = n }(presignBatch)
	presignBatch = 1
	url, keys := pgtest.URL(t), testKeys(t)
	a, b := newNode(t, url, keys), newNode(t, url, keys)
	issuer := webAuthority(t, a)
	certs := a.issue(t, 4)
	a.refresh(t) // leads; its first refresh sees no change and walks one certificate
	b.refresh(t)
	if !a.svc.leadingOCSP.Load() || b.svc.leadingOCSP.Load() {
		t.Fatal("a does not lead OCSP alone")
	}
	// Revoked now, and no leader's refresh since: what the leader may have
	// published for it says good.
	revoked := certs[2]
	if _, err := a.ca.Revoke(ctx, ca.Serial(revoked.SerialNumber), 1, "test"); err != nil {
		t.Fatal(err)
	}
	var miss *x509.Certificate
	for _, c := range certs {
		if _, err := b.st.PublishedOCSP(ctx, "web", "sha256", ca.Serial(c.SerialNumber)); err != nil && c != revoked {
			miss = c
		}
	}
	if miss == nil {
		t.Fatal("the leader published more than a walk of one")
	}

	if got := b.ocspStatus(t, miss, issuer); got != -1 { // b asks for a responder
		t.Errorf("follower, first miss: status %d, want tryLater", got)
	}
	b.refresh(t)
	for _, c := range certs {
		want := ocsp.Good
		if c == revoked {
			want = ocsp.Revoked
		}
		if got := b.ocspStatus(t, c, issuer); got != want {
			t.Errorf("follower, %x: status %d, want %d", c.SerialNumber, got, want)
		}
	}
	// A serial never issued: unknown, as the leader answers.
	stranger := *certs[0]
	stranger.SerialNumber = bigOne()
	for name, n := range map[string]*node{"leader": a, "follower": b} {
		if got := n.ocspStatus(t, &stranger, issuer); got != ocsp.Unknown {
			t.Errorf("%s, serial never issued: status %d, want unknown", name, got)
		}
	}
	// b's responder is its own, recorded in the store.
	f := &fixture{srv: b.srv}
	_, der := f.post(t, ocspRequest(t, revoked, issuer, crypto.SHA1))
	r, err := ocsp.ParseResponseForCert(der, revoked, issuer)
	if err != nil || r.Status != ocsp.Revoked || r.Certificate == nil {
		t.Fatalf("follower, revoked, SHA-1: %v, %+v", err, r)
	}
	if _, err := b.st.CertStatus(ctx, ca.Serial(r.Certificate.SerialNumber)); err != nil {
		t.Errorf("the follower's responder certificate is not recorded: %v", err)
	}
	if s := a.svc.authority("web").ocsp.signer.Load(); s == nil || s.Cert.Equal(r.Certificate) {
		t.Errorf("the follower answered with the leader's responder")
	}
	// The leader still publishes only what it signed: nothing of b's.
	for _, c := range certs {
		d, err := b.st.PublishedOCSP(ctx, "web", "sha1", ca.Serial(c.SerialNumber))
		if err == nil && bytes.Equal(d.DER, der) {
			t.Errorf("the follower's response for %x was published", c.SerialNumber)
		}
	}

	// OpenSSL asks the follower and checks the chain to the root.
	dir := t.TempDir()
	root, err := b.st.Authority(ctx, ca.RootName)
	if err != nil {
		t.Fatal(err)
	}
	writePEM := func(name string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rootPEM, issuerPEM := writePEM("root.pem", root.CertDER), writePEM("web.pem", issuer.Raw)
	for i, c := range certs {
		leaf := writePEM(fmt.Sprintf("leaf%d.pem", i), c.Raw)
		out, err := exec.Command(openssl, "ocsp", "-issuer", issuerPEM, "-cert", leaf, "-url", b.srv.URL+"/ocsp/web",
			"-CAfile", rootPEM).CombinedOutput()
		want := leaf + ": good"
		if c == revoked {
			want = leaf + ": revoked"
		}
		if err != nil || !strings.Contains(string(out), "Response verify OK") || !strings.Contains(string(out), want) {
			t.Errorf("openssl ocsp, follower, %x: %v, want %q\n%s", c.SerialNumber, err, want, out)
		}
	}
}

// TestSharedLockedFollowerSignsNothing: a follower whose keys are locked
// (the same key files, their passphrase not given) signs nothing and has
// no responder issued: what the leader has not published is tryLater.
func TestSharedLockedFollowerSignsNothing(t *testing.T) {
	ctx := context.Background()
	defer func(n int) { presignBatch = n }(presignBatch)
	presignBatch = 1
	dir := t.TempDir()
	url, keys := pgtest.URL(t), testKeysIn(t, dir)
	locked := kms.NewManager(kms.Options{Dir: dir, Passphrase: kms.Unlock})
	t.Cleanup(func() { locked.Close() })
	a, b := newNode(t, url, keys), newNode(t, url, locked)
	issuer := webAuthority(t, a)
	certs := a.issue(t, 3)
	for _, name := range []string{ca.RootName, "web"} { // as serve checks them at start
		if st := b.ca.Check(ctx, mustAuthority(t, b.st, name)); st.State != ca.Locked {
			t.Fatalf("%s on the locked node: %+v", name, st)
		}
	}
	a.refresh(t) // leads; walks one certificate
	b.refresh(t)
	var miss *x509.Certificate
	for _, c := range certs {
		if _, err := b.st.PublishedOCSP(ctx, "web", "sha256", ca.Serial(c.SerialNumber)); err != nil {
			miss = c
		}
	}
	if miss == nil {
		t.Fatal("the leader published more than a walk of one")
	}
	for round := range 2 {
		if got := b.ocspStatus(t, miss, issuer); got != -1 {
			t.Errorf("locked follower, round %d: status %d, want tryLater", round, got)
		}
		b.refresh(t)
	}
	if s := b.svc.authority("web").ocsp.signer.Load(); s != nil {
		t.Errorf("the locked follower holds a responder, %x", s.Cert.SerialNumber)
	}
}

func bigOne() *big.Int { return big.NewInt(1) }
