package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/ocsp"

	"signet/internal/audit"
	"signet/internal/store"
	"signet/internal/store/sqlite"
)

// chromiumPath finds Debian's chromium, or skips the test naming why
// (unless SIGNET_REQUIRE_CHROMIUM is set, as scripts/test sets it).
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("SIGNET_REQUIRE_CHROMIUM") != "" {
		t.Fatal("chromium is not installed and SIGNET_REQUIRE_CHROMIUM is set: apt-get install chromium")
	}
	t.Skip("chromium is not installed (apt-get install chromium); the console's browser test needs it")
	return ""
}

// consoleHome is a home whose software keys are unlocked at run time
// (passphrase 'unlock'), with a certificate expiring in 5 days, one in 60
// days to find, and rows written by untrusted parties: a certificate
// whose subject is markup and an ACME account with a javascript: contact.
type consoleHome struct {
	dir, addr, httpAddr, pass string
	operator, viewer, admin   string // tokens of the operators otto, vera and ada
	expiring, findme, markup  string // serials
}

func newConsoleHome(t *testing.T) *consoleHome {
	t.Helper()
	h := &consoleHome{dir: filepath.Join(t.TempDir(), "home"), pass: "a passphrase for the console test",
		addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), httpAddr: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	t.Setenv("SIGNET_CONSOLE_PASS", h.pass)
	signetCLI(t, "init", "--home", h.dir, "--passphrase", "env:SIGNET_CONSOLE_PASS", "--listen", h.addr, "--http-listen", h.httpAddr)
	serial := regexp.MustCompile(`issued ([0-9a-f]+) `)
	issue := func(name, validity string) string {
		out := signetCLI(t, "issue", "--home", h.dir, "--dns", name, "--validity", validity, "--new-key", filepath.Join(h.dir, name+".key"),
			"--clear-key", "--out", filepath.Join(h.dir, name+".pem"))
		m := serial.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no serial in %q", out)
		}
		return m[1]
	}
	h.expiring = issue("expiring.example.org", "120h")
	h.findme = issue("findme.example.org", "1440h")

	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(h.dir, "signet.db"))
	if err != nil {
		t.Fatal(err)
	}
	h.markup = "0bad0bad"
	now := time.Now()
	err = st.RecordCertificate(ctx, store.Certificate{Serial: h.markup, Authority: "default",
		Subject: `CN=<img src=x onerror=alert(1)><script>alert(2)</script>`, DNSNames: []string{"markup.example.org"},
		NotBefore: now, NotAfter: now.Add(200 * 24 * time.Hour), Status: store.Valid, Requester: "api:test", DER: []byte{0x30, 0}},
		audit.Event{Actor: "api:test"})
	if err == nil {
		err = st.CreateACMEAccount(ctx, store.ACMEAccount{ID: "evilaccount", Authority: "default", KeyID: "thumb", Key: []byte(`{}`),
			Contacts: []string{"javascript:alert(1)"}, Status: store.StatusValid}, audit.Event{Actor: "acme"})
	}
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(h.dir, "signet.toml")
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte("passphrase = 'env:SIGNET_CONSOLE_PASS'"), []byte("passphrase = 'unlock'"), 1)
	if err := os.WriteFile(conf, b, 0o600); err != nil {
		t.Fatal(err)
	}
	token := regexp.MustCompile(`(?m)^token: (\S+)$`)
	add := func(name, role string) string {
		m := token.FindStringSubmatch(signetCLI(t, "operator", "add", name, "--role", role, "--home", h.dir))
		if m == nil {
			t.Fatalf("operator add %s printed no token", name)
		}
		return m[1]
	}
	h.operator, h.viewer, h.admin = add("otto", "operator"), add("vera", "viewer"), add("ada", "admin")
	return h
}

// serve starts signet serve on the home until the test ends, and waits
// until both listeners answer.
func (h *consoleHome) serve(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr lockedBuffer
	exited := make(chan int, 1)
	go func() { exited <- run(ctx, []string{"serve", "--home", h.dir}, nil, &stdout, &stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			t.Error("serve did not stop within 15 s")
		}
	})
	for i := 0; ; i++ {
		select {
		case code := <-exited:
			t.Fatalf("serve exited %d: %s", code, stderr.String())
		default:
		}
		resp, err := http.Get("http://" + h.httpAddr + "/ca/default.crt")
		if err == nil {
			resp.Body.Close()
			if c, err := net.Dial("tcp", h.addr); err == nil {
				c.Close()
				return
			}
		}
		if i == 600 {
			t.Fatalf("serve never listened: %s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ocspStatus asks the home's OCSP responder about the certificate in
// certFile (with its chain) and returns the answer's status.
func (h *consoleHome) ocspStatus(t *testing.T, chainPEM []byte) int {
	t.Helper()
	var chain []*x509.Certificate
	for rest := chainPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, c)
	}
	if len(chain) < 2 || len(chain[0].OCSPServer) == 0 {
		t.Fatalf("the chain has %d certificates; want a leaf naming its OCSP responder and its issuer", len(chain))
	}
	req, err := ocsp.CreateRequest(chain[0], chain[1], nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(chain[0].OCSPServer[0], "application/ocsp-request", bytes.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	der, _ := io.ReadAll(resp.Body)
	r, err := ocsp.ParseResponseForCert(der, chain[0], chain[1])
	if err != nil {
		return -1 // not signed yet
	}
	return r.Status
}

// status reads a certificate's status with signet show, as an operator would.
func (h *consoleHome) status(t *testing.T, serial string) string {
	t.Helper()
	var out struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal([]byte(signetCLI(t, "show", serial, "--home", h.dir, "--json")), &out); err != nil {
		t.Fatal(err)
	}
	return out.Status
}

// The checks run in the page: one h1, every visible input, select and
// textarea labelled, no horizontal scrolling, no element made from
// untrusted data.
const (
	jsOneH1      = `document.querySelectorAll('h1').length === 1`
	jsUnlabelled = `Array.from(document.querySelectorAll('input:not([type=hidden]), select, textarea')).filter(e =>
		!(e.id && document.querySelector('label[for="' + e.id + '"]')) && !e.getAttribute('aria-label')).map(e => e.name)`
	jsFits  = `document.scrollingElement.scrollWidth <= window.innerWidth`
	jsInert = `document.querySelectorAll('script, img, iframe, object, embed, [onerror], a[href^="javascript:"], a[href^="mailto:"]').length === 0`
	// jsFocusVisible tabs to the first control and reads its outline.
	jsFocusOutline = `(() => { const e = document.activeElement; return e && e !== document.body ? getComputedStyle(e).outlineStyle + ' ' + getComputedStyle(e).outlineWidth : 'nothing focused'; })()`
)

// TestConsoleInBrowser drives the console in a real headless Chromium
// against signet serve: sign in as an operator, unlock, the dashboard, search, issue from
// a pasted CSR and download the chain (openssl verify), revoke and see
// OCSP change, the audit log, a forged cross-site POST refused, untrusted
// data inert, a viewer refused, and the layout and labels at desktop and
// phone sizes.
// Screenshots go to the directory SIGNET_SCREENSHOTS names, if any.
func TestConsoleInBrowser(t *testing.T) {
	chromium := chromiumPath(t)
	h := newConsoleHome(t)
	h.serve(t)
	base := "https://" + h.addr

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.IgnoreCertErrors, chromedp.WindowSize(1280, 800))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	if err := chromedp.Do(bctx); err != nil { // starts the browser, for as long as bctx
		t.Fatalf("starting %s: %v", chromium, err)
	}
	ctx, cancel := context.WithTimeout(bctx, 3*time.Minute)
	defer cancel()

	shots := os.Getenv("SIGNET_SCREENSHOTS")
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			if shots == "" {
				return nil
			}
			png, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644)
		})
	}
	where := func() string {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		return loc
	}
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v (at %s)", what, err, where())
		}
	}
	truth := func(what, js string) {
		t.Helper()
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		if err != nil || !ok {
			t.Errorf("%s: %v, %v at %s", what, ok, err, where())
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("reading %s: %v (at %s)", sel, err, where())
		}
		return s
	}
	css := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	// checkPage: one h1, every control labelled, and no horizontal
	// scrolling at either size.
	checkPage := func(name string) {
		t.Helper()
		truth(name+": one h1", jsOneH1)
		unlabelled, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](jsUnlabelled))
		if err != nil || len(unlabelled) > 0 {
			t.Errorf("%s: controls without a label: %v, %v", name, unlabelled, err)
		}
		for _, size := range [][2]int64{{1280, 800}, {390, 844}} {
			do(name+": resize", chromedp.EmulateViewport(size[0], size[1]), shot(fmt.Sprintf("%s-%d", name, size[0])))
			truth(fmt.Sprintf("%s fits %dx%d without horizontal scrolling", name, size[0], size[1]), jsFits)
		}
		do(name+": desktop again", chromedp.EmulateViewport(1280, 800))
	}

	// Signed out, / leads to the sign-in page; the token signs in.
	do("sign-in page", chromedp.Navigate(base+"/"), chromedp.WaitVisible(css("#token")))
	checkPage("signin")
	do("sign in", chromedp.SendKeys(css("#token"), h.operator), chromedp.Submit(css("#token")),
		chromedp.WaitVisible(css(`section[aria-labelledby="h-auth"]`)))
	if got := text("h1"); got != "Dashboard" {
		t.Errorf("after sign-in the h1 is %q", got)
	}
	// Keyboard: the first Tab reaches the skip link, with a visible outline.
	do("tab", chromedp.KeyEvent("\t"))
	if outline, err := chromedp.Run(ctx, chromedp.Evaluate[string](jsFocusOutline)); err != nil || !strings.HasPrefix(outline, "solid") ||
		strings.HasSuffix(outline, " 0px") {
		t.Errorf("the focused control's outline is %q, %v; want a visible one", outline, err)
	}

	// The authorities are locked: unlock with the passphrase.
	auth := text(`section[aria-labelledby="h-auth"]`)
	if !strings.Contains(auth, "default") || !strings.Contains(auth, "root") || !strings.Contains(auth, "locked") {
		t.Errorf("dashboard authorities: %q; want default and root, locked", auth)
	}
	checkPage("dashboard-locked")
	do("unlock", chromedp.SendKeys(css("#secret-default"), h.pass), chromedp.Submit(css("#secret-default")),
		chromedp.WaitNotPresent(css("#secret-default")))
	auth = text(`section[aria-labelledby="h-auth"]`)
	if strings.Contains(strings.ReplaceAll(auth, "unlocked", ""), "locked") || !strings.Contains(auth, "unlocked") {
		t.Errorf("after unlocking: %q; want every authority unlocked", auth)
	}
	// The certificate expiring in 5 days is listed within 7 days.
	if exp := text(`section[aria-labelledby="h-exp"]`); !strings.Contains(exp, h.expiring) || !strings.Contains(exp, "expiring.example.org") {
		t.Errorf("expiring soon: %q; want %s (expiring.example.org)", exp, h.expiring)
	}
	checkPage("dashboard")

	// Search by name.
	do("search", chromedp.Navigate(base+"/ui/certificates"), chromedp.SendKeys(css("#q"), "findme"), chromedp.Submit(css("#q")))
	for i := 0; !strings.Contains(where(), "q=findme"); i++ {
		if i == 200 {
			t.Fatalf("the search never loaded: at %s", where())
		}
		time.Sleep(25 * time.Millisecond)
	}
	do("search results", chromedp.WaitVisible(css("tbody")))
	if rows := text("tbody"); !strings.Contains(rows, h.findme) || strings.Contains(rows, h.expiring) {
		t.Errorf("search for findme: %q; want %s alone", rows, h.findme)
	}
	checkPage("certificates")

	// Issue from a pasted CSR and download the chain.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csrDER, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "pasted.example.org"},
		DNSNames: []string{"pasted.example.org"}}, key)
	csrPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER}))
	do("issue form", chromedp.Navigate(base+"/ui/issue"), chromedp.WaitVisible(css("#csr")))
	checkPage("issue")
	do("issue", chromedp.SetValue(css("#csr"), csrPEM), chromedp.Submit(css("#csr")), chromedp.WaitVisible(css("p.notice")))
	issued := regexp.MustCompile(`/ui/certificates/([0-9a-f]+)\?issued=1$`).FindStringSubmatch(where())
	if issued == nil {
		t.Fatalf("after issuing, at %s", where())
	}
	serial := issued[1]
	checkPage("issued")

	downloads := t.TempDir()
	yes := true
	if _, err := cdp.Call(ctx, chromedp.FromContext(ctx).Browser, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads, EventsEnabled: &yes}); err != nil {
		t.Fatal(err)
	}
	progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
	do("download", chromedp.Click(css("p.notice a")))
	var chainFile string
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("waiting for the download: %v", err)
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			chainFile = filepath.Join(downloads, ev.GUID)
			break
		}
	}
	chainPEM, err := os.ReadFile(chainFile)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("openssl", "verify", "-CAfile", filepath.Join(h.dir, "root.pem"), "-untrusted", chainFile, chainFile).CombinedOutput(); err != nil {
		t.Errorf("openssl verify of the downloaded chain: %v\n%s", err, out)
	}
	// The responder signs an answer for a new certificate in a moment.
	for i := 0; h.ocspStatus(t, chainPEM) != ocsp.Good; i++ {
		if i == 200 {
			t.Fatal("OCSP never said good before revoking")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Revoke after the confirmation step; OCSP says revoked.
	do("revoke form", chromedp.Navigate(base+"/ui/certificates/"+serial+"/revoke"), chromedp.WaitVisible(css("#confirm")))
	checkPage("revoke")
	do("revoke", chromedp.SetValue(css("#reason"), "keyCompromise"), chromedp.SendKeys(css("#confirm"), serial),
		chromedp.Submit(css("#confirm")), chromedp.WaitVisible(css("span.state-revoked")))
	for i := 0; h.ocspStatus(t, chainPEM) != ocsp.Revoked; i++ {
		if i == 200 {
			t.Fatal("OCSP never said revoked")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The audit log names the operator for each action.
	do("audit", chromedp.Navigate(base+"/ui/audit"), chromedp.WaitVisible(css("tbody")))
	log := text("tbody")
	for _, want := range []string{"console.signin", "authority.unlock", "certificate.issue", "certificate.revoke", "ui:otto"} {
		if !strings.Contains(log, want) {
			t.Errorf("audit log lacks %q:\n%s", want, log)
		}
	}
	// serve verified the log at start, before any of this.
	if v := text(`section[aria-labelledby="h-verify"]`); !strings.Contains(v, "Intact: events 1 to") {
		t.Errorf("audit verification: %q; want intact", v)
	}
	checkPage("audit")

	// Untrusted data renders as text.
	for _, page := range []string{"/ui/acme", "/ui/acme/accounts/evilaccount", "/ui/certificates?q=markup", "/ui/certificates/" + h.markup} {
		do(page, chromedp.Navigate(base+page), chromedp.WaitVisible(css("main")))
		truth(page+" holds no element made from untrusted data", jsInert)
		checkPage(strings.NewReplacer("/", "-", "?", "-", "=", "-").Replace(strings.TrimPrefix(page, "/ui/")))
	}
	if got := text("main"); !strings.Contains(got, "<script>alert(2)</script>") {
		t.Errorf("the markup subject is not shown as text: %q", got)
	}
	do("account", chromedp.Navigate(base+"/ui/acme/accounts/evilaccount"), chromedp.WaitVisible(css("dl")))
	if got := text("dl"); !strings.Contains(got, "javascript:alert(1)") {
		t.Errorf("the contact is not shown as text: %q", got)
	}
	do("ssh", chromedp.Navigate(base+"/ui/ssh"), chromedp.WaitVisible(css("main")))
	checkPage("ssh")

	// A page on another site posts a revocation with the browser's cookies:
	// refused, and the certificate stays valid.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form method="post" action="%s/ui/certificates/%s/revoke">
<input name="reason" value="keyCompromise"><input name="confirm" value="%s"><input name="csrf" value="forged">
<button id="go" type="submit">win a prize</button></form>`, base, h.findme, h.findme)
	}))
	defer evil.Close()
	do("forged post", chromedp.Navigate(evil.URL), chromedp.Click(css("#go")), chromedp.WaitVisible(css("p.problem")))
	if got := text("p.problem"); !strings.Contains(got, "another site") {
		t.Errorf("the forged POST's answer: %q", got)
	}
	if st := h.status(t, h.findme); st != "valid" {
		t.Errorf("after the forged POST %s is %s; want valid", h.findme, st)
	}

	// Sign out: the dashboard asks to sign in again.
	do("sign out", chromedp.Navigate(base+"/ui/"), chromedp.Click(css("form.signout button")), chromedp.WaitVisible(css("#token")),
		chromedp.Navigate(base+"/ui/"), chromedp.WaitVisible(css("#token")))

	// A viewer sees the certificate but is offered no revocation, and the
	// revocation page refuses it.
	do("viewer signs in", chromedp.SendKeys(css("#token"), h.viewer), chromedp.Submit(css("#token")),
		chromedp.WaitVisible(css(`section[aria-labelledby="h-auth"]`)),
		chromedp.Navigate(base+"/ui/certificates/"+h.findme), chromedp.WaitVisible(css("dl.facts")))
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('a[href$="/revoke"], a[href="/ui/issue"]').length`)); err != nil || n != 0 {
		t.Errorf("a viewer is offered %d revoke or issue links (%v)", n, err)
	}
	do("viewer revokes", chromedp.Navigate(base+"/ui/certificates/"+h.findme+"/revoke"), chromedp.WaitVisible(css("p.problem")))
	if got := text("p.problem"); !strings.Contains(got, "your role viewer may not") {
		t.Errorf("a viewer at the revocation page: %q", got)
	}
	if st := h.status(t, h.findme); st != "valid" {
		t.Errorf("after the viewer %s is %s; want valid", h.findme, st)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('a[href="/ui/operators"]').length`)); err != nil || n != 0 {
		t.Errorf("a viewer is offered %d links to the operators page (%v)", n, err)
	}

	// An admin adds an operator on the Operators page: its token is shown.
	do("admin signs in", chromedp.Navigate(base+"/ui/"), chromedp.Click(css("form.signout button")), chromedp.WaitVisible(css("#token")),
		chromedp.SendKeys(css("#token"), h.admin), chromedp.Submit(css("#token")),
		chromedp.WaitVisible(css(`section[aria-labelledby="h-auth"]`)),
		chromedp.Click(css(`nav a[href="/ui/operators"]`)), chromedp.WaitVisible(css("#op-name")))
	checkPage("operators")
	do("add operator", chromedp.SendKeys(css("#op-name"), "olga"), chromedp.SetValue(css("#op-role"), "operator"),
		chromedp.Submit(css("#op-name")), chromedp.WaitVisible(css("#operator-token")))
	if got := text("#operator-token"); !strings.HasPrefix(got, "signet-op-") {
		t.Errorf("the new operator's token: %q", got)
	}
	checkPage("operator-added")
	if out := signetCLI(t, "operator", "list", "--home", h.dir); !regexp.MustCompile(`(?m)^olga\s+operator\s`).MatchString(out) {
		t.Errorf("operator list after the console added olga:\n%s", out)
	}
}
