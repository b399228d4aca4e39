package wfe_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	xacme "golang.org/x/crypto/acme"

	"signet/internal/acme/wfe"
	"signet/internal/config"
	"signet/internal/limits"
)

// withLimits is a newEnvWith option: the front end limited by l.
func withLimits(t *testing.T, l config.Limits) func(*wfe.Options) {
	lim, err := limits.New(l, nil)
	if err != nil {
		t.Fatal(err)
	}
	return func(o *wfe.Options) { o.Limits = lim }
}

// wantRateLimited checks err is the ACME rateLimited problem, with
// Retry-After when retry says so.
func wantRateLimited(t *testing.T, err error, retry bool, what string) {
	t.Helper()
	var ae *xacme.Error
	switch {
	case !errors.As(err, &ae):
		t.Fatalf("%s: %v, want rateLimited", what, err)
	case ae.StatusCode != http.StatusTooManyRequests || ae.ProblemType != "urn:ietf:params:acme:error:rateLimited":
		t.Fatalf("%s: %d %s (%s), want 429 rateLimited", what, ae.StatusCode, ae.ProblemType, ae.Detail)
	}
	if s, err := strconv.Atoi(ae.Header.Get("Retry-After")); retry && (err != nil || s < 1) {
		t.Fatalf("%s: Retry-After %q", what, ae.Header.Get("Retry-After"))
	}
}

// limitedClient is e.client that gives up on 429 at once (x/crypto/acme retries
// it until the context ends) and retries anything else once.
func (e *env) limitedClient() *xacme.Client {
	c := e.client(nil)
	c.RetryBackoff = func(n int, _ *http.Request, resp *http.Response) time.Duration {
		if n > 1 || resp != nil && resp.StatusCode == http.StatusTooManyRequests {
			return -1
		}
		return 10 * time.Millisecond
	}
	return c
}

// forwarded sends every request with X-Forwarded-For set to its address.
type forwarded struct {
	base http.RoundTripper
	mu   sync.Mutex
	addr string
}

func (f *forwarded) RoundTrip(r *http.Request) (*http.Response, error) {
	f.mu.Lock()
	addr := f.addr
	f.mu.Unlock()
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", addr)
	return f.base.RoundTrip(r)
}

func (f *forwarded) from(addr string) {
	f.mu.Lock()
	f.addr = addr
	f.mu.Unlock()
}

// TestNewAccountLimit: new accounts per source address. Behind a trusted
// proxy the source is the X-Forwarded-For address; an existing account's
// key is answered whatever the limit. Without a trusted proxy the header
// is ignored.
func TestNewAccountLimit(t *testing.T) {
	ctx := context.Background()
	for _, proxied := range []bool{true, false} {
		l := config.Limits{NewAccountsPerIP: config.Rate{Count: 2, Per: time.Hour}}
		if proxied {
			l.TrustedProxies = []string{"127.0.0.1/32"}
		}
		e := newEnvWith(t, withLimits(t, l))
		fw := &forwarded{base: e.ts.Client().Transport, addr: "192.0.2.1"}
		client := func() *xacme.Client {
			c := e.limitedClient()
			c.HTTPClient = &http.Client{Transport: fw}
			return c
		}
		first := client()
		e.register(first)
		e.register(client())
		_, err := client().Register(ctx, &xacme.Account{}, xacme.AcceptTOS)
		wantRateLimited(t, err, true, "third account from one address")
		if _, err := first.GetReg(ctx, ""); err != nil {
			t.Fatalf("an existing account is looked up whatever the limit: %v", err)
		}
		fw.from("192.0.2.2")
		_, err = client().Register(ctx, &xacme.Account{}, xacme.AcceptTOS)
		if proxied && err != nil {
			t.Fatalf("an account from another address behind a trusted proxy: %v", err)
		}
		if !proxied {
			wantRateLimited(t, err, true, "X-Forwarded-For from an untrusted peer")
		}
	}
}

// TestOrderLimits: identifiers per order, pending authorizations per
// account, and orders per account; all refused as rateLimited.
func TestOrderLimits(t *testing.T) {
	ctx := context.Background()
	e := newEnvWith(t, withLimits(t, config.Limits{
		IdentifiersPerOrder: 2, PendingAuthzsPerAccount: 3, OrdersPerAccount: config.Rate{Count: 3, Per: time.Hour},
	}))
	c := e.limitedClient()
	e.register(c)
	ids := func(names ...string) []xacme.AuthzID {
		var out []xacme.AuthzID
		for _, n := range names {
			out = append(out, xacme.AuthzID{Type: "dns", Value: n})
		}
		return out
	}
	_, err := c.AuthorizeOrder(ctx, ids("a.signet.test", "b.signet.test", "c.signet.test"))
	wantRateLimited(t, err, false, "order of 3 identifiers")

	o, err := c.AuthorizeOrder(ctx, ids("a.signet.test", "b.signet.test"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.AuthorizeOrder(ctx, ids("c.signet.test", "d.signet.test"))
	wantRateLimited(t, err, true, "2 more pending authorizations on top of 2")
	// Validating one frees its place.
	e.solve(c, o.AuthzURLs[0], "http-01")
	if _, err := c.AuthorizeOrder(ctx, ids("c.signet.test", "d.signet.test")); err != nil {
		t.Fatalf("order once an authorization is valid: %v", err)
	}
	_, err = c.AuthorizeOrder(ctx, ids("e.signet.test"))
	wantRateLimited(t, err, true, "fourth order") // 3 pending, and the third order this hour
	other := e.limitedClient()
	e.register(other)
	if _, err := other.AuthorizeOrder(ctx, ids("e.signet.test")); err != nil {
		t.Fatalf("another account's order: %v", err)
	}
}

// TestOrdersPerAccount: the third order in the window is refused, with
// Retry-After, even with no pending authorization left.
func TestOrdersPerAccount(t *testing.T) {
	ctx := context.Background()
	e := newEnvWith(t, withLimits(t, config.Limits{OrdersPerAccount: config.Rate{Count: 2, Per: time.Hour}}))
	c := e.limitedClient()
	e.register(c)
	for range 2 {
		o, err := c.AuthorizeOrder(ctx, []xacme.AuthzID{{Type: "dns", Value: "a.signet.test"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.RevokeAuthorization(ctx, o.AuthzURLs[0]); err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.AuthorizeOrder(ctx, []xacme.AuthzID{{Type: "dns", Value: "a.signet.test"}})
	wantRateLimited(t, err, true, "third order in an hour")
}

// TestFailedValidationLimit: after its failed validations of a name, an
// account's challenges for that name are refused; other names validate.
func TestFailedValidationLimit(t *testing.T) {
	ctx := context.Background()
	e := newEnvWith(t, withLimits(t, config.Limits{FailedValidationsPerName: config.Rate{Count: 1, Per: time.Hour}}))
	c := e.limitedClient()
	e.register(c)
	accept := func(name string) error {
		o, err := c.AuthorizeOrder(ctx, []xacme.AuthzID{{Type: "dns", Value: name}})
		if err != nil {
			t.Fatal(err)
		}
		az, err := c.GetAuthorization(ctx, o.AuthzURLs[0])
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range az.Challenges {
			if ch.Type == "http-01" {
				if _, err := c.Accept(ctx, ch); err != nil {
					return err
				}
			}
		}
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		_, err = c.WaitAuthorization(wctx, o.AuthzURLs[0])
		return err
	}
	// Nothing answers the http-01 challenge: the validation fails.
	if err := accept("fail.signet.test"); err == nil {
		t.Fatal("an unanswered challenge validated")
	}
	wantRateLimited(t, accept("fail.signet.test"), true, "validation after a failed one")
	o, err := c.AuthorizeOrder(ctx, []xacme.AuthzID{{Type: "dns", Value: "ok.signet.test"}})
	if err != nil {
		t.Fatal(err)
	}
	e.solve(c, o.AuthzURLs[0], "http-01")
}

// TestCertificateLimit: an authority issues no more than its burst at
// once; the finalization over it is refused and the order stays ready.
func TestCertificateLimit(t *testing.T) {
	ctx := context.Background()
	e := newEnvWith(t, withLimits(t, config.Limits{CertificatesPerAuthority: config.Rate{Count: 1, Per: time.Hour}, CertificatesBurst: 1}))
	c := e.limitedClient()
	e.register(c)
	ready := func(name string) *xacme.Order {
		o, err := c.AuthorizeOrder(ctx, []xacme.AuthzID{{Type: "dns", Value: name}})
		if err != nil {
			t.Fatal(err)
		}
		e.solve(c, o.AuthzURLs[0], "http-01")
		return o
	}
	a, b := ready("a.signet.test"), ready("b.signet.test")
	if _, _, err := c.CreateOrderCert(ctx, a.FinalizeURL, csr(t, nil, "a.signet.test"), true); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.CreateOrderCert(ctx, b.FinalizeURL, csr(t, nil, "b.signet.test"), true)
	wantRateLimited(t, err, true, "second certificate")
	if o, err := c.GetOrder(ctx, b.URI); err != nil || o.Status != xacme.StatusReady {
		t.Fatalf("refused order: %+v, %v; want it still ready", o, err)
	}
}

// TestPrune: orders and their authorizations expired for more than an
// order lifetime are deleted, the order of a live certificate stays.
func TestPrune(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c := e.client(nil)
	e.register(c)
	stale, err := c.AuthorizeOrder(ctx, []xacme.AuthzID{{Type: "dns", Value: "stale.signet.test"}})
	if err != nil {
		t.Fatal(err)
	}
	done, err := c.AuthorizeOrder(ctx, []xacme.AuthzID{{Type: "dns", Value: "done.signet.test"}})
	if err != nil {
		t.Fatal(err)
	}
	e.solve(c, done.AuthzURLs[0], "http-01")
	if _, _, err := c.CreateOrderCert(ctx, done.FinalizeURL, csr(t, nil, "done.signet.test"), true); err != nil {
		t.Fatal(err)
	}
	if n, err := e.wfe.Prune(ctx); err != nil || n != 0 {
		t.Fatalf("prune of live orders: %d, %v; want none", n, err)
	}
	e.ahead.Store(int64(49 * time.Hour)) // the 24 h orders expired more than 24 h ago
	if n, err := e.wfe.Prune(ctx); err != nil || n != 1 {
		t.Fatalf("prune: %d, %v; want the stale order", n, err)
	}
	for _, u := range []string{stale.URI, stale.AuthzURLs[0]} {
		var ae *xacme.Error
		if _, err := c.GetAuthorization(ctx, u); !errors.As(err, &ae) || ae.StatusCode != http.StatusNotFound {
			t.Errorf("%s after prune: %v, want 404", u, err)
		}
	}
	if o, err := c.GetOrder(ctx, done.URI); err != nil || o.Status != xacme.StatusValid {
		t.Errorf("the order of a live certificate: %+v, %v", o, err)
	}
}

// TestOrderLimitsAcrossNodes: orders and pending authorizations per
// account are counted in the store, so another node sharing it (with
// limits of its own) refuses the account's order over the limit.
func TestOrderLimitsAcrossNodes(t *testing.T) {
	l := config.Limits{OrdersPerAccount: config.Rate{Count: 5, Per: time.Hour}, PendingAuthzsPerAccount: 2}
	e := newEnvWith(t, withLimits(t, l))
	key := newKey(t)
	c := e.limitedClient()
	c.Key = key
	acct := e.register(c)
	if _, err := c.AuthorizeOrder(context.Background(), []xacme.AuthzID{{Type: "dns", Value: "a.signet.test"}, {Type: "dns", Value: "b.signet.test"}}); err != nil {
		t.Fatal(err)
	}
	b := e.secondNodeWith(e.h.Store, withLimits(t, l))
	p := b.signed(key, acct.URI, e.ts.URL+"/acme/default/new-order", []byte(`{"identifiers":[{"type":"dns","value":"c.signet.test"}]}`))
	if p == nil || p.Type != "urn:ietf:params:acme:error:rateLimited" || p.Status != http.StatusTooManyRequests {
		t.Fatalf("node B: an order over the pending authorizations made on node A: %+v, want rateLimited", p)
	}
}
