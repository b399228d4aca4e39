package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"signet/internal/config"
	"signet/internal/limits"
	"signet/internal/server"
)

// clock is a settable clock for the limits.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// limitedServer is an API server over a CA with one tls-server authority
// "web", limited by l on the clock clk.
func limitedServer(t *testing.T, l config.Limits, clk *clock) *httptest.Server {
	t.Helper()
	f := newWebFixture(t, "sqlite")
	lim, err := limits.New(l, clk.now)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(server.New(server.Options{CA: f.ca, Store: f.store, AdminToken: []byte("secret"), Limits: lim}).Handler())
	t.Cleanup(ts.Close)
	return ts
}

type answer struct {
	status int
	retry  string
	typ    string
	body   []byte
}

func call(t *testing.T, ts *httptest.Server, method, path, token, ctype, body string) answer {
	t.Helper()
	req, _ := http.NewRequest(method, ts.URL+path, nil)
	if body != "" {
		req, _ = http.NewRequest(method, ts.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var p struct{ Type string }
	json.Unmarshal(b, &p)
	return answer{resp.StatusCode, resp.Header.Get("Retry-After"), p.Type, b}
}

// TestAdminBackOff: failed authentications from one address make it wait,
// a bounded time; while it waits even the right token is refused (else
// the back-off would not slow guessing), and after it the right token
// works: the operator is never locked out. A right token counts nothing.
func TestAdminBackOff(t *testing.T) {
	clk := &clock{t: time.Now()}
	ts := limitedServer(t, config.Limits{FailedAdminAuthPerIP: config.Rate{Count: 2, Per: time.Hour}}, clk)
	for range 3 {
		if a := call(t, ts, "GET", "/api/v1/authorities", "secret", "", ""); a.status != http.StatusOK {
			t.Fatalf("right token: %+v", a)
		}
	}
	for range 2 {
		if a := call(t, ts, "GET", "/api/v1/authorities", "guess", "", ""); a.status != http.StatusUnauthorized {
			t.Fatalf("wrong token: %+v, want 401", a)
		}
	}
	for _, token := range []string{"guess", "secret"} {
		a := call(t, ts, "GET", "/api/v1/authorities", token, "", "")
		retry, err := strconv.Atoi(a.retry)
		if a.status != http.StatusTooManyRequests || a.typ != "urn:signet:error:rate-limited" || err != nil || retry < 1 || retry > 30*60 {
			t.Fatalf("token %q while backing off: %+v, want 429 with Retry-After of at most 30 minutes", token, a)
		}
	}
	clk.add(30 * time.Minute) // one attempt's worth at 2 per hour
	if a := call(t, ts, "GET", "/api/v1/authorities", "secret", "", ""); a.status != http.StatusOK {
		t.Fatalf("right token after the back-off: %+v, want 200", a)
	}
}

// TestAPICertificateLimit: an authority issues over the API no more than
// its burst at once, answered 429 with Retry-After.
func TestAPICertificateLimit(t *testing.T) {
	clk := &clock{t: time.Now()}
	ts := limitedServer(t, config.Limits{CertificatesPerAuthority: config.Rate{Count: 1, Per: time.Minute}, CertificatesBurst: 2}, clk)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"www.example.org"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	for range 2 {
		if a := call(t, ts, "POST", "/api/v1/authorities/web/certificates", "secret", "application/pkcs10", csr); a.status != http.StatusOK && a.status != http.StatusCreated {
			t.Fatalf("issue: %+v", a)
		}
	}
	a := call(t, ts, "POST", "/api/v1/authorities/web/certificates", "secret", "application/pkcs10", csr)
	if a.status != http.StatusTooManyRequests || a.retry == "" || a.typ != "urn:signet:error:rate-limited" {
		t.Fatalf("third certificate at once: %+v, want 429 with Retry-After", a)
	}
	clk.add(time.Minute)
	if a := call(t, ts, "POST", "/api/v1/authorities/web/certificates", "secret", "application/pkcs10", csr); a.status != http.StatusOK && a.status != http.StatusCreated {
		t.Fatalf("issue a minute later: %+v", a)
	}
}
