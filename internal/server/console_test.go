package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"html"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"signet/internal/acme/eab"
	"signet/internal/audit"
	"signet/internal/ca"
	"signet/internal/config"
	"signet/internal/errs"
	"signet/internal/kms"
	"signet/internal/limits"
	"signet/internal/policy"
	"signet/internal/profile"
	"signet/internal/server"
	"signet/internal/store"
)

// consoleFixture is the server over HTTPS (the console's cookies are
// Secure) with a root and a tls-server authority "web".
type consoleFixture struct {
	f      fixture
	url    string
	ts     *httptest.Server
	sealer *eab.Sealer
}

func newConsoleFixture(t *testing.T, lim *limits.Limits) *consoleFixture {
	t.Helper()
	ctx := context.Background()
	f := newFixture(t, kms.ECDSAP256, "file:root.key", "file:web.key", "file:users.key")
	if _, err := f.ca.CreateRoot(ctx, ca.RootSpec{CommonName: "test root", KeyURI: "file:root.key"}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []ca.AuthoritySpec{
		{Name: "web", Purpose: profile.TLSServer, KeyURI: "file:web.key", Policy: policy.Policy{DNS: []string{"example.org"}}},
		{Name: "users", Purpose: profile.SSHUser, KeyURI: "file:users.key", Policy: policy.Policy{Principals: []string{"*"}}},
	} {
		if _, err := f.ca.CreateAuthority(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	kek := make([]byte, 32)
	rand.Read(kek)
	sealer, err := eab.NewSealer(kek)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(server.New(server.Options{CA: f.ca, Store: f.store, AdminToken: []byte("secret"), Limits: lim, EAB: sealer}).Handler())
	t.Cleanup(ts.Close)
	return &consoleFixture{f: f, url: ts.URL, ts: ts, sealer: sealer}
}

// browser is a client with a cookie jar that does not follow redirects.
type browser struct {
	t    *testing.T
	c    *http.Client
	base string
}

func (cf *consoleFixture) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Transport: cf.ts.Client().Transport, Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return &browser{t: t, c: c, base: cf.url}
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (b *browser) get(path string) (*http.Response, string) {
	req, _ := http.NewRequest("GET", b.base+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values, header ...string) (*http.Response, string) {
	req, _ := http.NewRequest("POST", b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.do(req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the CSRF token of the form on page path.
func (b *browser) csrf(path string) string {
	b.t.Helper()
	resp, body := b.get(path)
	m := csrfField.FindStringSubmatch(body)
	if resp.StatusCode != 200 || m == nil {
		b.t.Fatalf("GET %s: %d, no CSRF token in\n%s", path, resp.StatusCode, body)
	}
	return m[1]
}

// signIn signs in with token and returns the session cookie's value.
func (b *browser) signIn(token string) string {
	b.t.Helper()
	resp, body := b.post("/ui/signin", url.Values{"csrf": {b.csrf("/ui/signin")}, "token": {token}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		b.t.Fatalf("sign-in: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "__Host-signet-session" {
			return c.Value
		}
	}
	b.t.Fatal("sign-in set no session cookie")
	return ""
}

func sessionHash(id string) []byte { h := sha256.Sum256([]byte(id)); return h[:] }

// TestConsoleSignIn: the sign-in form carries a CSRF token tied to a
// cookie; a wrong token is refused; the right one makes a session whose
// cookie is Secure, HttpOnly, SameSite=Strict and host-only, of which the
// store keeps only the SHA-256; every answer has the CSP.
func TestConsoleSignIn(t *testing.T) {
	cf := newConsoleFixture(t, nil)
	b := cf.browser(t)
	ctx := context.Background()

	resp, _ := b.get("/")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /: %d to %q; want a redirect to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = b.get("/ui/")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/signin" {
		t.Errorf("GET /ui/ signed out: %d to %q; want the sign-in page", resp.StatusCode, resp.Header.Get("Location"))
	}
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("Content-Security-Policy %q; want default-src 'none', frame-ancestors 'none' and no unsafe-inline", csp)
	}
	if resp.Header.Get("X-Frame-Options") != "DENY" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("framing and sniffing headers: %v", resp.Header)
	}

	// No CSRF token, or another browser's: refused, no session.
	for name, form := range map[string]url.Values{
		"no CSRF token":    {"token": {"secret"}},
		"wrong CSRF token": {"token": {"secret"}, "csrf": {"x" + b.csrf("/ui/signin")}},
	} {
		resp, body := b.post("/ui/signin", form)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "CSRF") || len(resp.Cookies()) != 0 {
			t.Errorf("%s: %d, cookies %v; want 403 naming the CSRF token and no cookie\n%s", name, resp.StatusCode, resp.Cookies(), body)
		}
	}
	resp, body := b.post("/ui/signin", url.Values{"csrf": {b.csrf("/ui/signin")}, "token": {"not the token"}})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Sign-in refused") {
		t.Errorf("wrong token: %d; want 401 and the form again\n%s", resp.StatusCode, body)
	}

	first := b.signIn("secret")
	// Signing in again makes a new ID; its raw Set-Cookie has the attributes.
	var cookie string
	resp, _ = b.post("/ui/signin", url.Values{"csrf": {b.csrf("/ui/signin")}, "token": {"secret"}})
	for _, line := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(line, "__Host-signet-session=") {
			cookie = line
		}
	}
	for _, attr := range []string{"Path=/", "Secure", "HttpOnly", "SameSite=Strict", "Max-Age=43200"} {
		if !strings.Contains(cookie, "; "+attr) {
			t.Errorf("session cookie %q lacks %s", cookie, attr)
		}
	}
	if strings.Contains(cookie, "Domain=") {
		t.Errorf("session cookie %q names a domain; it must be host-only", cookie)
	}
	second := strings.TrimPrefix(strings.SplitN(cookie, ";", 2)[0], "__Host-signet-session=")
	if second == first || second == "" {
		t.Fatalf("signing in again kept the session ID %q", first)
	}
	// The store has the hash of the new ID, not the ID; the old one is gone.
	if s, err := cf.f.store.ConsoleSession(ctx, sessionHash(second)); err != nil || s.Operator != "api:admin-token" || s.Role != "admin" {
		t.Errorf("stored session: %+v, %v", s, err)
	}
	if _, err := cf.f.store.ConsoleSession(ctx, sessionHash(first)); errs.KindOf(err) != errs.NotFound {
		t.Errorf("the session before the new sign-in: %v; want it deleted", err)
	}
	resp, body = b.get("/ui/")
	if resp.StatusCode != 200 || !strings.Contains(body, "<h1>Dashboard</h1>") || !strings.Contains(body, ">web</a>") {
		t.Errorf("dashboard: %d\n%s", resp.StatusCode, body)
	}
	events, _ := cf.f.store.AuditEvents(ctx, store.EventFilter{Kind: "console.signin"})
	if len(events) != 2 || events[0].Actor != "ui:admin-token" {
		t.Errorf("sign-in events: %+v; want two by ui:admin-token", events)
	}

	// Sign-out deletes the session: its cookie no longer works.
	resp, _ = b.post("/ui/signout", url.Values{"csrf": {b.csrf("/ui/")}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("sign-out: %d", resp.StatusCode)
	}
	if _, err := cf.f.store.ConsoleSession(ctx, sessionHash(second)); errs.KindOf(err) != errs.NotFound {
		t.Errorf("session after sign-out: %v; want it deleted", err)
	}
	u, _ := url.Parse(cf.url)
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "__Host-signet-session", Value: second, Path: "/", Secure: true}})
	if resp, _ := b.get("/ui/"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the signed-out session's cookie: %d; want the sign-in page", resp.StatusCode)
	}
}

// TestConsoleSessionExpiry: a session idle for more than 30 minutes, or
// older than 12 hours however busy, is over and deleted.
func TestConsoleSessionExpiry(t *testing.T) {
	cf := newConsoleFixture(t, nil)
	ctx := context.Background()
	now := time.Now()
	for _, tc := range []struct {
		name          string
		created, seen time.Time
		live          bool
	}{
		{"fresh", now.Add(-time.Hour), now.Add(-29 * time.Minute), true},
		{"idle 31 minutes", now.Add(-time.Hour), now.Add(-31 * time.Minute), false},
		{"12 hours and a minute old, busy", now.Add(-12*time.Hour - time.Minute), now.Add(-time.Minute), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "session " + tc.name
			if err := cf.f.store.CreateConsoleSession(ctx, store.ConsoleSession{IDHash: sessionHash(id), Operator: "admin", Role: "admin",
				CreatedAt: tc.created, SeenAt: tc.seen}); err != nil {
				t.Fatal(err)
			}
			b := cf.browser(t)
			u, _ := url.Parse(cf.url)
			b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "__Host-signet-session", Value: id, Path: "/", Secure: true}})
			resp, _ := b.get("/ui/")
			_, err := cf.f.store.ConsoleSession(ctx, sessionHash(id))
			if tc.live && (resp.StatusCode != 200 || err != nil) {
				t.Errorf("live session: %d, %v; want the dashboard", resp.StatusCode, err)
			}
			if !tc.live && (resp.StatusCode != http.StatusSeeOther || errs.KindOf(err) != errs.NotFound) {
				t.Errorf("expired session: %d, store %v; want the sign-in page and the session deleted", resp.StatusCode, err)
			}
		})
	}
}

// issueOne issues a certificate from authority web for name.
func (cf *consoleFixture) issueOne(t *testing.T, name string) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	iss, err := cf.f.ca.Issue(context.Background(), ca.Request{Authority: "web", PublicKey: key.Public(), DNSNames: []string{name}, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return iss.Serial
}

// TestConsoleCSRF: a state-changing form without the session's CSRF
// token, with another's, or sent by a browser from another site, changes
// nothing; with it, the revocation is made in the operator's name.
func TestConsoleCSRF(t *testing.T) {
	cf := newConsoleFixture(t, nil)
	ctx := context.Background()
	serial := cf.issueOne(t, "www.example.org")
	b := cf.browser(t)
	b.signIn("secret")
	token := b.csrf("/ui/certificates/" + serial + "/revoke")
	other := cf.browser(t)
	other.signIn("secret")
	otherToken := other.csrf("/ui/")

	path := "/ui/certificates/" + serial + "/revoke"
	for _, tc := range []struct {
		name   string
		form   url.Values
		header []string
	}{
		{"no token", url.Values{"reason": {"keyCompromise"}, "confirm": {serial}}, nil},
		{"another session's token", url.Values{"csrf": {otherToken}, "reason": {"keyCompromise"}, "confirm": {serial}}, nil},
		{"cross-site", url.Values{"csrf": {token}, "reason": {"keyCompromise"}, "confirm": {serial}}, []string{"Sec-Fetch-Site", "cross-site"}},
		{"other origin", url.Values{"csrf": {token}, "reason": {"keyCompromise"}, "confirm": {serial}}, []string{"Origin", "https://evil.example"}},
	} {
		resp, body := b.post(path, tc.form, tc.header...)
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: %d; want 403\n%s", tc.name, resp.StatusCode, body)
		}
		if c, _ := cf.f.store.Certificate(ctx, serial); c.Status != store.Valid {
			t.Fatalf("%s revoked the certificate", tc.name)
		}
	}
	// Without the confirmation, nothing either.
	if resp, _ := b.post(path, url.Values{"csrf": {token}, "reason": {"keyCompromise"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("no confirmation: %d; want 400", resp.StatusCode)
	}
	resp, body := b.post(path, url.Values{"csrf": {token}, "reason": {"keyCompromise"}, "confirm": {serial}}, "Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d\n%s", resp.StatusCode, body)
	}
	c, _ := cf.f.store.Certificate(ctx, serial)
	events, _ := cf.f.store.AuditEvents(ctx, store.EventFilter{Subject: serial, Kind: audit.KindCertificateRevoke})
	if c.Status != store.Revoked || c.RevocationReason != 1 || len(events) != 1 || events[0].Actor != "ui:admin-token" {
		t.Errorf("after revoking: %+v, events %+v; want revoked for keyCompromise by ui:admin-token", c, events)
	}
}

// TestConsoleSignInLimited: failed sign-ins count against the API's
// limits on failed authentication; over them, even the right token waits.
func TestConsoleSignInLimited(t *testing.T) {
	clk := &clock{t: time.Now()}
	lim, err := limits.New(config.Limits{FailedAdminAuthPerIP: config.Rate{Count: 2, Per: time.Hour}}, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	cf := newConsoleFixture(t, lim)
	b := cf.browser(t)
	for range 2 {
		if resp, _ := b.post("/ui/signin", url.Values{"csrf": {b.csrf("/ui/signin")}, "token": {"wrong"}}); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong token: %d", resp.StatusCode)
		}
	}
	resp, body := b.post("/ui/signin", url.Values{"csrf": {b.csrf("/ui/signin")}, "token": {"secret"}})
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("right token after the limit: %d; want 429\n%s", resp.StatusCode, body)
	}
}

// TestConsoleRendersUntrustedDataAsText: what ACME clients and CSR authors
// wrote (contacts, subjects) is escaped text on every page, never a link.
func TestConsoleRendersUntrustedDataAsText(t *testing.T) {
	cf := newConsoleFixture(t, nil)
	ctx := context.Background()
	evil := `<script>alert(1)</script><img src=x onerror=alert(2)>`
	serial := "0badc0de"
	if err := cf.f.store.RecordCertificate(ctx, store.Certificate{Serial: serial, Authority: "web", Subject: "CN=" + evil,
		DNSNames: []string{"x.example.org"}, NotBefore: time.Now(), NotAfter: time.Now().Add(3 * 24 * time.Hour), Status: store.Valid,
		Requester: evil, DER: []byte{0x30}}, audit.Event{Actor: evil}); err != nil {
		t.Fatal(err)
	}
	if err := cf.f.store.CreateACMEAccount(ctx, store.ACMEAccount{ID: "acct1", Authority: "web", KeyID: "thumb", Key: []byte(`{}`),
		Contacts: []string{"javascript:alert(1)", "mailto:" + evil}, Status: store.StatusValid}, audit.Event{Actor: "acme"}); err != nil {
		t.Fatal(err)
	}
	b := cf.browser(t)
	b.signIn("secret")
	for _, path := range []string{"/ui/", "/ui/certificates?q=x.example", "/ui/certificates/" + serial, "/ui/audit", "/ui/acme", "/ui/acme/accounts/acct1"} {
		resp, body := b.get(path)
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d\n%s", path, resp.StatusCode, body)
			continue
		}
		if strings.Contains(body, "<script") || strings.Contains(body, "<img") || strings.Contains(body, `href="javascript:`) ||
			strings.Contains(body, `href="mailto:`) {
			t.Errorf("%s renders untrusted data as markup:\n%s", path, body)
		}
	}
	_, body := b.get("/ui/certificates/" + serial)
	if !strings.Contains(body, "CN=&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("the subject is not shown as escaped text:\n%s", body)
	}
	_, body = b.get("/ui/acme/accounts/acct1")
	if !strings.Contains(body, "javascript:alert(1)") {
		t.Errorf("the contact is not shown as text:\n%s", body)
	}
}

// TestConsoleIssue: a pasted CSR is issued from the chosen authority in the
// operator's name, and its chain downloads; a bad CSR says what is wrong.
func TestConsoleIssue(t *testing.T) {
	cf := newConsoleFixture(t, nil)
	b := cf.browser(t)
	b.signIn("secret")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "app.example.org"},
		DNSNames: []string{"app.example.org"}}, key)
	csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	token := b.csrf("/ui/issue")
	resp, body := b.post("/ui/issue", url.Values{"csrf": {token}, "authority": {"web"}, "csr": {"garbage"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "CSR") {
		t.Errorf("garbage CSR: %d\n%s", resp.StatusCode, body)
	}
	resp, body = b.post("/ui/issue", url.Values{"csrf": {token}, "authority": {"web"}, "csr": {csr}, "validity": {"10d"}})
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/ui/certificates/") {
		t.Fatalf("issue: %d %q\n%s", resp.StatusCode, loc, body)
	}
	serial := strings.TrimSuffix(strings.TrimPrefix(loc, "/ui/certificates/"), "?issued=1")
	c, err := cf.f.store.Certificate(context.Background(), serial)
	if err != nil || c.Requester != "ui:admin-token" || c.DNSNames[0] != "app.example.org" || c.NotAfter.Sub(c.NotBefore) > 10*24*time.Hour+time.Hour {
		t.Errorf("issued: %+v, %v; want app.example.org for 10 days requested by ui:admin-token", c, err)
	}
	resp, body = b.get("/ui/certificates/" + serial + "/chain.pem")
	if resp.StatusCode != 200 || strings.Count(body, "BEGIN CERTIFICATE") != 2 || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Errorf("chain download: %d %v\n%s", resp.StatusCode, resp.Header, body)
	}

	// The CSR as an uploaded file (DER), with names that replace its own.
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	mw.WriteField("csrf", token)
	mw.WriteField("authority", "web")
	mw.WriteField("names", "upload.example.org, api.example.org")
	fw, _ := mw.CreateFormFile("csrfile", "req.der")
	fw.Write(der)
	mw.Close()
	req, _ := http.NewRequest("POST", b.base+"/ui/issue", &form)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, body = b.do(req)
	loc = resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/ui/certificates/") {
		t.Fatalf("issue from an upload: %d %q\n%s", resp.StatusCode, loc, body)
	}
	serial = strings.TrimSuffix(strings.TrimPrefix(loc, "/ui/certificates/"), "?issued=1")
	if c, err := cf.f.store.Certificate(context.Background(), serial); err != nil || !slices.Equal(c.DNSNames, []string{"upload.example.org", "api.example.org"}) {
		t.Errorf("issued from the upload: %+v, %v; want the names given", c.DNSNames, err)
	}
}

// TestConsoleEAB: an admin creates an EAB key for an authority serving
// ACME; the HMAC key is shown once, stored sealed, and opens to what was
// shown. An authority without ACME gets none.
func TestConsoleEAB(t *testing.T) {
	cf := newConsoleFixture(t, nil)
	ctx := context.Background()
	b := cf.browser(t)
	b.signIn("secret")
	token := b.csrf("/ui/acme")
	resp, body := b.post("/ui/acme/eab", url.Values{"csrf": {token}, "authority": {"web"}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "does not serve ACME") {
		t.Errorf("EAB key for an authority without ACME: %d\n%s", resp.StatusCode, body)
	}
	on := true
	if _, _, err := cf.f.ca.ChangeAuthority(ctx, "web", store.AuthorityChange{ACME: &on}, "test"); err != nil {
		t.Fatal(err)
	}
	resp, body = b.post("/ui/acme/eab", url.Values{"csrf": {token}, "authority": {"web"}})
	kid := regexp.MustCompile(`id="eab-kid">([^<]+)<`).FindStringSubmatch(body)
	key := regexp.MustCompile(`id="eab-key">([^<]+)<`).FindStringSubmatch(body)
	if resp.StatusCode != 200 || kid == nil || key == nil {
		t.Fatalf("EAB key: %d\n%s", resp.StatusCode, body)
	}
	stored, err := cf.f.store.EABKey(ctx, kid[1])
	if err != nil {
		t.Fatal(err)
	}
	opened, err := cf.sealer.Open(kid[1], stored.Sealed)
	if err != nil || base64.RawURLEncoding.EncodeToString(opened) != key[1] {
		t.Errorf("stored key opens to %x, %v; want what was shown", opened, err)
	}
	if _, body := b.get("/ui/acme"); strings.Contains(body, key[1]) {
		t.Error("the ACME page shows the HMAC key again")
	}
	events, _ := cf.f.store.AuditEvents(ctx, store.EventFilter{Kind: "acme.eab.create"})
	if len(events) != 1 || events[0].Actor != "ui:admin-token" {
		t.Errorf("EAB events: %+v; want one by ui:admin-token", events)
	}
}

// addOperator adds a named operator with role and returns its token.
func (cf *consoleFixture) addOperator(t *testing.T, name, role string) string {
	t.Helper()
	token, sum, err := store.NewOperatorToken()
	if err != nil {
		t.Fatal(err)
	}
	if err := cf.f.store.AddOperator(context.Background(), store.Operator{Name: name, Role: role, TokenHash: sum[:]},
		audit.Event{Actor: "cli"}); err != nil {
		t.Fatal(err)
	}
	return token
}

// TestConsoleRoles: named operators sign in with their personal tokens; a
// viewer reads but may not issue, revoke, unlock or create EAB keys, and is
// not offered to; an operator revokes, audited under its name.
func TestConsoleRoles(t *testing.T) {
	cf := newConsoleFixture(t, nil)
	ctx := context.Background()
	serial := cf.issueOne(t, "www.example.org")
	vera := cf.browser(t)
	vera.signIn(cf.addOperator(t, "vera", store.RoleViewer))
	_, body := vera.get("/ui/certificates/" + serial)
	if !strings.Contains(body, "www.example.org") || strings.Contains(body, "/revoke") || strings.Contains(body, `href="/ui/issue"`) {
		t.Errorf("a viewer's certificate page: want the certificate, no revoke or issue link\n%s", body)
	}
	token := vera.csrf("/ui/")
	for _, tc := range []struct {
		method, path string
		form         url.Values
	}{
		{"GET", "/ui/issue", nil},
		{"GET", "/ui/certificates/" + serial + "/revoke", nil},
		{"POST", "/ui/certificates/" + serial + "/revoke", url.Values{"csrf": {token}, "reason": {"keyCompromise"}, "confirm": {serial}}},
		{"POST", "/ui/issue", url.Values{"csrf": {token}, "authority": {"web"}, "csr": {"x"}}},
		{"POST", "/ui/unlock", url.Values{"csrf": {token}, "authority": {"web"}, "secret": {"x"}}},
		{"POST", "/ui/acme/eab", url.Values{"csrf": {token}, "authority": {"web"}}},
	} {
		var resp *http.Response
		if tc.method == "GET" {
			resp, body = vera.get(tc.path)
		} else {
			resp, body = vera.post(tc.path, tc.form)
		}
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "your role viewer may not") {
			t.Errorf("viewer %s %s: %d; want 403 naming the role\n%s", tc.method, tc.path, resp.StatusCode, body)
		}
	}
	if c, _ := cf.f.store.Certificate(ctx, serial); c.Status != store.Valid {
		t.Fatal("a viewer revoked a certificate")
	}

	otto := cf.browser(t)
	otto.signIn(cf.addOperator(t, "otto", store.RoleOperator))
	path := "/ui/certificates/" + serial + "/revoke"
	if resp, body := otto.post(path, url.Values{"csrf": {otto.csrf(path)}, "reason": {"superseded"}, "confirm": {serial}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("operator revokes: %d\n%s", resp.StatusCode, body)
	}
	events, _ := cf.f.store.AuditEvents(ctx, store.EventFilter{Subject: serial, Kind: audit.KindCertificateRevoke})
	if len(events) != 1 || events[0].Actor != "ui:otto" {
		t.Errorf("revoke events: %+v; want one by ui:otto", events)
	}
	// An operator is no admin: no EAB keys.
	if resp, _ := otto.post("/ui/acme/eab", url.Values{"csrf": {otto.csrf("/ui/")}, "authority": {"web"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("operator creates an EAB key: %d; want 403", resp.StatusCode)
	}
	// Removing otto ends his session at his next request, on any node.
	if err := cf.f.store.RemoveOperator(ctx, "otto", audit.Event{Actor: "cli"}); err != nil {
		t.Fatal(err)
	}
	if resp, _ := otto.get("/ui/"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/signin" {
		t.Errorf("a removed operator's session: %d to %q; want the sign-in page", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestConsoleSSH: the SSH page lists each SSH authority's CA keys with
// their rollover state, and links its trust lines and KRL.
func TestConsoleSSH(t *testing.T) {
	cf := newConsoleFixture(t, nil)
	keys, err := cf.f.store.SSHKeys(context.Background(), "users")
	if err != nil || len(keys) != 1 {
		t.Fatalf("SSH keys: %v, %v", keys, err)
	}
	b := cf.browser(t)
	b.signIn("secret")
	resp, body := b.get("/ui/ssh")
	body = html.UnescapeString(body) // html/template writes a fingerprint's '+' as &#43;
	for _, want := range []string{keys[0].Fingerprint, ">active<", `href="/api/v1/authorities/users/ssh/trust"`, `href="/api/v1/authorities/users/ssh/krl"`} {
		if resp.StatusCode != 200 || !strings.Contains(body, want) {
			t.Errorf("SSH page: %d, lacks %q\n%s", resp.StatusCode, want, body)
		}
	}
}
