package revocation

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"signet/internal/audit"
	"signet/internal/ca"
	"signet/internal/kms"
	"signet/internal/lint"
	"signet/internal/policy"
	"signet/internal/profile"
	"signet/internal/store"
	"signet/internal/store/sqlite"
)

const base = "http://crl.test"

// fixture is a real CA (SQLite store, encrypted software keys, lint gate)
// with an authority "web" of 16 shards, a settable clock, and the service
// behind an httptest server.
type fixture struct {
	ca     *ca.CA
	store  store.Store
	dbPath string
	svc    *Service
	srv    *httptest.Server
	issuer *x509.Certificate
	mu     sync.Mutex
	now    time.Time
}

func (f *fixture) clock() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func newFixture(t testing.TB) *fixture { return newFixtureKeys(t, false) }

// newFixtureKeys is newFixture; with unlock, the CA's keys take their
// passphrase at run time (kms.Unlock), given before the first refresh.
func newFixtureKeys(t testing.TB, unlock bool) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	t.Setenv("TEST_PASSPHRASE", "test passphrase")
	keys := kms.NewManager(kms.Options{Dir: dir, Passphrase: kms.Source("env:TEST_PASSPHRASE")})
	t.Cleanup(func() { keys.Close() })
	for _, uri := range []string{"file:root.key", "file:web.key"} {
		if _, err := keys.Generate(ctx, uri, kms.ECDSAP256); err != nil {
			t.Fatal(err)
		}
	}
	if unlock {
		keys = kms.NewManager(kms.Options{Dir: dir, Passphrase: kms.Unlock})
		t.Cleanup(func() { keys.Close() })
		if err := keys.Unlock(ctx, "", []byte("test passphrase"), false); err != nil {
			t.Fatal(err)
		}
	}
	dbPath := filepath.Join(dir, "signet.db")
	st, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	gate, err := lint.New()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{now: time.Now().UTC(), store: st, dbPath: dbPath}
	f.ca = ca.New(ca.Options{Store: st, Keys: keys, Lint: gate, Clock: f.clock, BaseURL: base})
	if _, err := f.ca.CreateRoot(ctx, ca.RootSpec{CommonName: "Test Root", KeyURI: "file:root.key"}); err != nil {
		t.Fatal(err)
	}
	rec, err := f.ca.CreateAuthority(ctx, ca.AuthoritySpec{Name: "web", Purpose: profile.TLSServer, KeyURI: "file:web.key",
		Policy: policy.Policy{DNS: []string{"*"}}})
	if err != nil {
		t.Fatal(err)
	}
	f.issuer, _ = x509.ParseCertificate(rec.CertDER)
	f.svc = New(Options{CA: f.ca, Store: st, Clock: f.clock, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := f.svc.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(f.svc.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) issue(t testing.TB, validity time.Duration) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	iss, err := f.ca.Issue(context.Background(), ca.Request{Authority: "web", PublicKey: key.Public(), DNSNames: []string{"a.example.org"}, Validity: validity})
	if err != nil {
		t.Fatal(err)
	}
	// No refresh: the CA puts what it issues into the service's mirror
	// (ca.OnIssue), so OCSP knows the certificate as soon as Issue returns.
	c, _ := x509.ParseCertificate(iss.DER)
	return c
}

// recordIssued records c as ca.Issue does, store row first, then the
// issuance hook (ca.OnIssue): an issuance the tests time themselves.
func (f *fixture) recordIssued(t testing.TB, c *x509.Certificate) {
	t.Helper()
	serial := ca.Serial(c.SerialNumber)
	err := f.store.RecordCertificate(context.Background(), store.Certificate{Serial: serial, Authority: "web", Subject: "CN=test",
		NotBefore: c.NotBefore, NotAfter: c.NotAfter, Status: store.Valid, Requester: "test", DER: c.Raw}, audit.Event{Actor: "test"})
	if err != nil {
		t.Error(err)
	}
	f.svc.issued(store.CertStatus{Serial: serial, Authority: "web", NotAfter: c.NotAfter})
}

// local turns a URL a certificate names into one on the test server.
func (f *fixture) local(u string) string { return f.srv.URL + strings.TrimPrefix(u, base) }

func (f *fixture) crl(t testing.TB, u string) *x509.RevocationList {
	t.Helper()
	resp, err := http.Get(f.local(u))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	der, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/pkix-crl" {
		t.Fatalf("%s: %d %s", u, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	l, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.CheckSignatureFrom(f.issuer); err != nil {
		t.Fatalf("%s: %v", u, err)
	}
	return l
}

func idpURL(t testing.TB, l *x509.RevocationList) string {
	t.Helper()
	for _, e := range l.Extensions {
		if e.Id.Equal(asn1.ObjectIdentifier{2, 5, 29, 28}) && e.Critical {
			var idp struct {
				DP struct {
					FullName []asn1.RawValue `asn1:"optional,tag:0"`
				} `asn1:"optional,tag:0"`
			}
			if _, err := asn1.Unmarshal(e.Value, &idp); err != nil || len(idp.DP.FullName) != 1 {
				t.Fatalf("IDP %x: %v", e.Value, err)
			}
			return string(idp.DP.FullName[0].Bytes)
		}
	}
	t.Fatal("no critical IDP")
	return ""
}

func lists(l *x509.RevocationList, serial *big.Int) bool {
	for _, e := range l.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(serial) == 0 {
			return true
		}
	}
	return false
}

// TestShards: certificates spread over shards, each CDP names a shard whose
// CRL's IDP is exactly that URL, and a revocation shows in its shard only.
func TestShards(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	byShard := map[string][]*x509.Certificate{}
	for range 40 {
		c := f.issue(t, 0)
		byShard[c.CRLDistributionPoints[0]] = append(byShard[c.CRLDistributionPoints[0]], c)
	}
	if len(byShard) < 8 {
		t.Errorf("40 certificates landed in %d of 16 shards", len(byShard))
	}
	numbers := map[string]int64{}
	for shard := range 16 {
		u := ca.CRLURL(base, "web", shard)
		l := f.crl(t, u)
		if got := idpURL(t, l); got != u {
			t.Errorf("shard %d: IDP %s", shard, got)
		}
		numbers[u] = l.Number.Int64()
	}
	var victim *x509.Certificate
	for _, cs := range byShard {
		victim = cs[0]
		break
	}
	if _, err := f.ca.Revoke(ctx, ca.Serial(victim.SerialNumber), 1, "test"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for shard := range 16 {
		u := ca.CRLURL(base, "web", shard)
		l := f.crl(t, u)
		own := u == victim.CRLDistributionPoints[0]
		if lists(l, victim.SerialNumber) != own {
			t.Errorf("shard %d lists the revoked certificate: %v, want %v", shard, !own, own)
		}
		if grew := l.Number.Int64() > numbers[u]; grew != own {
			t.Errorf("shard %d: CRL number %d → %d; only the revoked certificate's shard is re-signed", shard, numbers[u], l.Number.Int64())
		}
	}
}

// TestExpiredDropOut: a revoked certificate stays listed one CRL validity
// past its expiry (RFC 5280 3.3), then leaves; shards are re-signed before
// nextUpdate without any revocation.
func TestExpiredDropOut(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.issue(t, time.Hour)
	if _, err := f.ca.Revoke(ctx, ca.Serial(c.SerialNumber), 4, "test"); err != nil {
		t.Fatal(err)
	}
	f.svc.Refresh(ctx)
	u := c.CRLDistributionPoints[0]
	first := f.crl(t, u)
	if !lists(first, c.SerialNumber) || first.RevokedCertificateEntries[0].ReasonCode != 4 {
		t.Fatal("revoked certificate not listed with its reason")
	}
	f.advance(2 * time.Hour) // expired, but within one CRL validity: still listed
	f.svc.Refresh(ctx)
	if l := f.crl(t, u); !lists(l, c.SerialNumber) || l.Number.Cmp(first.Number) != 0 {
		t.Errorf("2h later: listed %v, number %v (want listed, not yet re-signed)", lists(l, c.SerialNumber), l.Number)
	}
	f.advance(12 * time.Hour) // half the CRL validity: every shard re-signed
	f.svc.Refresh(ctx)
	if l := f.crl(t, u); !lists(l, c.SerialNumber) || l.Number.Cmp(first.Number) <= 0 || l.NextUpdate.Before(f.clock()) {
		t.Errorf("14h later: listed %v, number %v, nextUpdate %v", lists(l, c.SerialNumber), l.Number, l.NextUpdate)
	}
	f.advance(12 * time.Hour) // more than a CRL validity past expiry
	f.svc.Refresh(ctx)
	if l := f.crl(t, u); lists(l, c.SerialNumber) {
		t.Error("a certificate expired for more than a CRL validity is still listed")
	}
}

func ocspRequest(t testing.TB, cert, issuer *x509.Certificate, h crypto.Hash) []byte {
	t.Helper()
	der, err := ocsp.CreateRequest(cert, issuer, &ocsp.RequestOptions{Hash: h})
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func (f *fixture) post(t testing.TB, body []byte) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Post(f.srv.URL+"/ocsp/web", "application/ocsp-request", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	der, _ := io.ReadAll(resp.Body)
	return resp, der
}

// TestOCSP: good, revoked (at once, from the cache) and unknown, over POST
// and GET, SHA-1 and SHA-256; responses cached, verifiable, with RFC 5019
// headers.
func TestOCSP(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.issue(t, 0)
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
		resp, der := f.post(t, ocspRequest(t, c, f.issuer, h))
		r, err := ocsp.ParseResponseForCert(der, c, f.issuer)
		if err != nil || r.Status != ocsp.Good || r.IssuerHash != h {
			t.Fatalf("%v: %+v, %v", h, r, err)
		}
		if resp.Header.Get("Content-Type") != "application/ocsp-response" || resp.Header.Get("Etag") == "" ||
			!strings.Contains(resp.Header.Get("Cache-Control"), "max-age=") || resp.Header.Get("Expires") == "" || resp.Header.Get("Last-Modified") == "" {
			t.Errorf("headers %v", resp.Header)
		}
		// Served from the cache: the very same bytes.
		if _, again := f.post(t, ocspRequest(t, c, f.issuer, h)); !bytes.Equal(again, der) {
			t.Errorf("%v: second answer differs: not cached", h)
		}
	}
	// GET, with the base64 request URL-escaped as RFC 6960 A.1 asks; find a
	// request whose base64 has '/' or '+' (ServeMux would mangle it).
	get := func(req []byte) *ocsp.Response {
		b64 := base64.StdEncoding.EncodeToString(req)
		resp, err := http.Get(f.srv.URL + "/ocsp/web/" + strings.NewReplacer("/", "%2F", "+", "%2B", "=", "%3D").Replace(b64))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		der, _ := io.ReadAll(resp.Body)
		r, err := ocsp.ParseResponseForCert(der, c, f.issuer)
		if err != nil {
			t.Fatalf("GET %s: %v", b64, err)
		}
		return r
	}
	if r := get(ocspRequest(t, c, f.issuer, crypto.SHA256)); r.Status != ocsp.Good {
		t.Errorf("GET: %v", r.Status)
	}
	// Revoked: the cached good answer is replaced as soon as the service
	// refreshes (in serve, at once: Run waits on ca.Changed).
	changed := f.ca.Changed()
	if _, err := f.ca.Revoke(ctx, ca.Serial(c.SerialNumber), 1, "test"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Error("Revoke did not signal a change")
	}
	f.svc.Refresh(ctx)
	_, der := f.post(t, ocspRequest(t, c, f.issuer, crypto.SHA1))
	if r, err := ocsp.ParseResponseForCert(der, c, f.issuer); err != nil || r.Status != ocsp.Revoked || r.RevocationReason != 1 {
		t.Errorf("after revocation: %+v, %v", r, err)
	}
	if r := get(ocspRequest(t, c, f.issuer, crypto.SHA256)); r.Status != ocsp.Revoked {
		t.Errorf("GET after revocation: %v", r.Status)
	}
	// Unknown: a serial this authority never issued.
	fake := *c
	fake.SerialNumber = big.NewInt(424242)
	_, der = f.post(t, ocspRequest(t, &fake, f.issuer, crypto.SHA1))
	if r, err := ocsp.ParseResponse(der, f.issuer); err != nil || r.Status != ocsp.Unknown {
		t.Errorf("never issued: %+v, %v", r, err)
	}
}

// TestUnknownThenIssued: an "unknown" answer cached for a serial (asked
// before it existed, or by another node's certificate not yet polled) is
// dropped when this process records the serial, so the next answer is
// "good" without waiting for a refresh.
func TestUnknownThenIssued(t *testing.T) {
	f := newFixture(t)
	c := *f.issue(t, 0)
	c.SerialNumber = big.NewInt(0x5eed)
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
		_, der := f.post(t, ocspRequest(t, &c, f.issuer, h))
		if r, err := ocsp.ParseResponse(der, f.issuer); err != nil || r.Status != ocsp.Unknown {
			t.Fatalf("%v before issuance: status %v, %v; want unknown", h, statusOf(r), err)
		}
	}
	f.recordIssued(t, &c)
	for _, h := range []crypto.Hash{crypto.SHA1, crypto.SHA256} {
		_, der := f.post(t, ocspRequest(t, &c, f.issuer, h))
		if r, err := ocsp.ParseResponse(der, f.issuer); err != nil || r.Status != ocsp.Good {
			t.Fatalf("%v after issuance: status %v, %v; want good", h, statusOf(r), err)
		}
	}
}

// signedThen makes the next response respond signs run fn between signing
// and caching: a status change racing a cache miss.
func signedThen(t *testing.T, fn func()) {
	t.Cleanup(func() { testHookSigned = nil })
	testHookSigned = func() {
		testHookSigned = nil // once; respond holds signMu, so no race on it
		fn()
	}
}

// TestIssuedWhileSigning: a serial issued while an "unknown" answer for it
// is being signed answers "good" right after, not "unknown" until a poll.
func TestIssuedWhileSigning(t *testing.T) {
	f := newFixture(t)
	c := *f.issue(t, 0)
	c.SerialNumber = big.NewInt(0x5eed)
	signedThen(t, func() { f.recordIssued(t, &c) })
	f.post(t, ocspRequest(t, &c, f.issuer, crypto.SHA1)) // whichever status: it raced the issuance
	_, der := f.post(t, ocspRequest(t, &c, f.issuer, crypto.SHA1))
	if r, err := ocsp.ParseResponse(der, f.issuer); err != nil || r.Status != ocsp.Good {
		t.Fatalf("after issuance: status %v, %v; want good", statusOf(r), err)
	}
}

// TestRevokedWhileSigning: a certificate revoked and refreshed while a
// "good" answer for it is being signed answers "revoked" right after.
func TestRevokedWhileSigning(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	c := f.issue(t, 0)
	signedThen(t, func() {
		if _, err := f.ca.Revoke(ctx, ca.Serial(c.SerialNumber), 1, "test"); err != nil {
			t.Error(err)
		}
		if err := f.svc.Refresh(ctx); err != nil {
			t.Error(err)
		}
	})
	f.post(t, ocspRequest(t, c, f.issuer, crypto.SHA1))
	_, der := f.post(t, ocspRequest(t, c, f.issuer, crypto.SHA1))
	if r, err := ocsp.ParseResponseForCert(der, c, f.issuer); err != nil || r.Status != ocsp.Revoked {
		t.Fatalf("after revocation: status %v, %v; want revoked", statusOf(r), err)
	}
}

func statusOf(r *ocsp.Response) any {
	if r == nil {
		return nil
	}
	return r.Status
}

// TestBadOCSPRequests: garbage, oversized, foreign issuers and wrong
// methods get the right error status; nothing crashes.
func TestBadOCSPRequests(t *testing.T) {
	f := newFixture(t)
	c := f.issue(t, 0)
	// A foreign CA: same names, other key.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Other CA"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	other, _ := x509.ParseCertificate(der)
	good := ocspRequest(t, c, f.issuer, crypto.SHA1)
	sha384, _ := ocsp.CreateRequest(c, f.issuer, &ocsp.RequestOptions{Hash: crypto.SHA384})
	for _, tc := range []struct {
		name string
		body []byte
		want ocsp.ResponseStatus
	}{
		{"empty", nil, ocsp.Malformed},
		{"garbage", []byte("not an OCSP request"), ocsp.Malformed},
		{"truncated", good[:len(good)-3], ocsp.Malformed},
		{"oversized", append(bytes.Repeat([]byte{0x30}, MaxOCSPRequest), good...), ocsp.Malformed},
		{"trailing data", append(append([]byte{}, good...), 0, 0), ocsp.Malformed},
		{"foreign issuer", ocspRequest(t, c, other, crypto.SHA1), ocsp.Unauthorized},
		{"SHA-384 CertID", sha384, ocsp.Unauthorized},
	} {
		resp, body := f.post(t, tc.body)
		_, err := ocsp.ParseResponse(body, nil)
		var re ocsp.ResponseError
		if !asResponseError(err, &re) || re.Status != tc.want || resp.StatusCode != 200 {
			t.Errorf("%s: HTTP %d, %v; want %v", tc.name, resp.StatusCode, err, tc.want)
		}
	}
	for _, path := range []string{"/ocsp/web/!!notbase64", "/ocsp/web/" + strings.Repeat("A", 4*MaxOCSPRequest), "/ocsp/web"} {
		resp, err := http.Get(f.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var re ocsp.ResponseError
		if _, err := ocsp.ParseResponse(body, nil); !asResponseError(err, &re) || re.Status != ocsp.Malformed {
			t.Errorf("GET %.40s: %v", path, err)
		}
	}
	req, _ := http.NewRequest("PUT", f.srv.URL+"/ocsp/web", bytes.NewReader(good))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("PUT: %v %v", resp.StatusCode, err)
	}
	for _, path := range []string{"/crl/web/16.crl", "/crl/web/01.crl", "/crl/nope/0.crl", "/crl/web/x.crl", "/crl/web/-1.crl", "/crl/nope.crl", "/crl/web", "/crl/web.crl/", "/ca/nope.crt", "/other"} {
		if resp, err := http.Get(f.srv.URL + path); err != nil || resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %v %v", path, resp.StatusCode, err)
		}
	}
}

func asResponseError(err error, re *ocsp.ResponseError) bool {
	r, ok := err.(ocsp.ResponseError)
	*re = r
	return ok
}

// TestSignCRLsLetsIssuanceIn: while a CRL run signs, the mirror takes new
// certificates (ca.Issue puts each one in synchronously): signCRLs holds
// the authority's lock only while copying the entries out.
func TestSignCRLsLetsIssuanceIn(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	victim := f.issue(t, 0)
	if _, err := f.ca.Revoke(ctx, ca.Serial(victim.SerialNumber), 1, "test"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	a := f.svc.authority("web")
	calls := 0
	signed, err := f.svc.signCRLs(ctx, a, nil, false, func(ca.SignedCRL) {
		if calls++; calls > 1 {
			return
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			a.put(serialKey{19: 1}, store.CertStatus{Authority: "web", Serial: "01", NotAfter: f.clock().Add(time.Hour)})
		}()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Error("putting a certificate in the mirror waited for the CRL run")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(signed) != 16 {
		t.Fatalf("signed %d shards, want 16", len(signed))
	}
	found := false
	for _, s := range signed {
		l, err := x509.ParseRevocationList(s.DER)
		if err != nil {
			t.Fatal(err)
		}
		found = found || lists(l, victim.SerialNumber)
	}
	if !found {
		t.Error("the revoked certificate is on no shard's CRL")
	}
}

// padded re-encodes an OCSP request for the same CertID with a nonce
// extension of n bytes carrying i: as distinct as a client can make it.
func padded(t testing.TB, req []byte, i, n int) []byte {
	t.Helper()
	var in struct{ TBS struct{ List asn1.RawValue } }
	if _, err := asn1.Unmarshal(req, &in); err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, n)
	binary.BigEndian.PutUint64(nonce, uint64(i))
	value, _ := asn1.Marshal(nonce)
	var out struct {
		TBS struct {
			List asn1.RawValue
			Ext  []pkix.Extension `asn1:"explicit,tag:2"`
		}
	}
	out.TBS.List = in.TBS.List
	out.TBS.Ext = []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}, Value: value}}
	der, err := asn1.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestOCSPPaddedRequests: distinct requests for one certificate (nonces of
// every length) are all answered, and leave one cached response and at
// most one request-bytes entry, not one per request: memory stays bounded
// by the certificates, not by what clients send.
func TestOCSPPaddedRequests(t *testing.T) {
	f := newFixture(t)
	c := f.issue(t, 0)
	req := ocspRequest(t, c, f.issuer, crypto.SHA1)
	f.post(t, req)
	for i := range 500 {
		body := padded(t, req, i, 8+i%800)
		if bytes.Equal(body, req) {
			t.Fatal("padding changed nothing")
		}
		_, der := f.post(t, body)
		if r, err := ocsp.ParseResponseForCert(der, c, f.issuer); err != nil || r.Status != ocsp.Good {
			t.Fatalf("padded request %d: %v, %v", i, statusOf(r), err)
		}
	}
	responses, _ := f.svc.cache.size()
	f.svc.rawMu.RLock()
	raw := len(f.svc.raw)
	f.svc.rawMu.RUnlock()
	if responses != 1 || raw != 1 {
		t.Errorf("after 501 requests for one certificate: %d cached responses and %d request-bytes entries, want 1 and 1", responses, raw)
	}
}

// TestLockedSignsNothing: once its authority is locked, OCSP answers what
// was signed until its nextUpdate and then tryLater; nothing is signed,
// with the CA key or the delegated responder's.
func TestLockedSignsNothing(t *testing.T) {
	f := newFixtureKeys(t, true)
	ctx := context.Background()
	c := f.issue(t, 0)
	req := ocspRequest(t, c, f.issuer, crypto.SHA1)
	_, before := f.post(t, req)
	if r, err := ocsp.ParseResponseForCert(before, c, f.issuer); err != nil || r.Status != ocsp.Good {
		t.Fatalf("before lock: %+v, %v", r, err)
	}
	if err := f.ca.Lock(ctx, ca.Target{Authority: "web"}, "test"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"root", "web"} { // as serve checks them after a lock
		if st := f.ca.Check(ctx, mustAuthority(t, f.store, name)); st.State != ca.Locked {
			t.Fatalf("%s after lock: %+v", name, st)
		}
	}
	if _, again := f.post(t, req); !bytes.Equal(again, before) {
		t.Error("locked: the response signed before is not served as it was")
	}
	f.advance(25 * time.Hour) // past the response's nextUpdate
	if err := f.svc.Refresh(ctx); err != nil {
		t.Fatalf("refresh while locked: %v", err)
	}
	if _, der := f.post(t, req); !bytes.Equal(der, ocsp.TryLaterErrorResponse) {
		t.Errorf("locked, past nextUpdate: %x, want tryLater", der)
	}
}

func mustAuthority(t *testing.T, st store.Store, name string) store.Authority {
	t.Helper()
	a, err := st.Authority(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
