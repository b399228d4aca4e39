package wfe_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	xacme "golang.org/x/crypto/acme"

	"signet/internal/policy"
	"signet/internal/store"
)

// TestChallengeTypes issues through every challenge type, for DNS names and
// an IP address, with golang.org/x/crypto/acme as the client (wildcards:
// TestWildcardOrder).
func TestChallengeTypes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client(nil)
	e.register(c)
	for _, tc := range []struct {
		name string
		ids  []xacme.AuthzID
		typ  string
	}{
		{"http-01", []xacme.AuthzID{{Type: "dns", Value: "web.signet.test"}}, "http-01"},
		{"dns-01", []xacme.AuthzID{{Type: "dns", Value: "dns.signet.test"}}, "dns-01"},
		{"tls-alpn-01", []xacme.AuthzID{{Type: "dns", Value: "alpn.signet.test"}}, "tls-alpn-01"},
		{"ip-http-01", []xacme.AuthzID{{Type: "ip", Value: "127.0.0.1"}}, "http-01"},
		{"ip-tls-alpn-01", []xacme.AuthzID{{Type: "ip", Value: "127.0.0.1"}}, "tls-alpn-01"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := c.AuthorizeOrder(ctx, tc.ids)
			if err != nil {
				t.Fatal(err)
			}
			if o.Status != xacme.StatusPending {
				t.Fatalf("new order status %s", o.Status)
			}
			for _, u := range o.AuthzURLs {
				if az := e.solve(c, u, tc.typ); az.Status != xacme.StatusValid {
					t.Fatalf("authz %s", az.Status)
				}
			}
			o, err = c.WaitOrder(ctx, o.URI)
			if err != nil || o.Status != xacme.StatusReady {
				t.Fatalf("order: %+v, %v", o, err)
			}
			chain, certURL, err := c.CreateOrderCert(ctx, o.FinalizeURL, csr(t, nil, tc.ids[0].Value), true)
			if err != nil {
				t.Fatal(err)
			}
			if len(chain) != 2 {
				t.Errorf("chain of %d certificates, want leaf and authority", len(chain))
			}
			if tc.ids[0].Type == "dns" {
				e.verify(chain, tc.ids[0].Value)
			}
			again, err := c.FetchCert(ctx, certURL, true)
			if err != nil || len(again) != len(chain) || string(again[0]) != string(chain[0]) {
				t.Errorf("fetch cert: %d, %v", len(again), err)
			}
		})
	}
}

// TestWildcardOrder orders a wildcard from an authority whose policy allows
// them: the authorization names the base domain with wildcard true and
// offers dns-01 alone (RFC 8555 §7.1.3, §8.4), and the certificate names
// the wildcard.
func TestWildcardOrder(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.authority("wild", policy.Policy{DNS: []string{"signet.test"}, Wildcards: true})
	c := e.client(nil)
	c.DirectoryURL = e.ts.URL + "/acme/wild/directory"
	e.register(c)
	const name = "*.wild.signet.test"
	o, err := c.AuthorizeOrder(ctx, []xacme.AuthzID{{Type: "dns", Value: name}})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.AuthzURLs) != 1 {
		t.Fatalf("%d authorizations, want 1", len(o.AuthzURLs))
	}
	az, err := c.GetAuthorization(ctx, o.AuthzURLs[0])
	if err != nil {
		t.Fatal(err)
	}
	if !az.Wildcard || az.Identifier.Value != "wild.signet.test" {
		t.Errorf("authorization for %q, wildcard %v; want wild.signet.test, true", az.Identifier.Value, az.Wildcard)
	}
	var types []string
	for _, ch := range az.Challenges {
		types = append(types, ch.Type)
	}
	if !slices.Equal(types, []string{"dns-01"}) {
		t.Errorf("challenges %v, want dns-01 alone", types)
	}
	if az := e.solve(c, o.AuthzURLs[0], "dns-01"); az.Status != xacme.StatusValid {
		t.Fatalf("authz %s", az.Status)
	}
	if o, err = c.WaitOrder(ctx, o.URI); err != nil || o.Status != xacme.StatusReady {
		t.Fatalf("order: %+v, %v", o, err)
	}
	chain, _, err := c.CreateOrderCert(ctx, o.FinalizeURL, csr(t, nil, name), true)
	if err != nil {
		t.Fatal(err)
	}
	leaf := e.verify(chain, "host.wild.signet.test")
	if !slices.Equal(leaf.DNSNames, []string{name}) {
		t.Errorf("certificate names %v, want [%s]", leaf.DNSNames, name)
	}
}

// TestOutOfService: an authority taken out of service answers newOrder and
// finalize with 503, its own problem type and Retry-After, before it signs
// anything; put back, the same order is finalized.
func TestOutOfService(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.authority("web", policy.Policy{DNS: []string{"signet.test"}})
	c := e.client(nil)
	c.DirectoryURL = e.ts.URL + "/acme/web/directory"
	e.register(c)
	const name = "www.web.signet.test"
	o, err := c.AuthorizeOrder(ctx, []xacme.AuthzID{{Type: "dns", Value: name}})
	if err != nil {
		t.Fatal(err)
	}
	if az := e.solve(c, o.AuthzURLs[0], "http-01"); az.Status != xacme.StatusValid {
		t.Fatalf("authz %s", az.Status)
	}
	if o, err = c.WaitOrder(ctx, o.URI); err != nil || o.Status != xacme.StatusReady {
		t.Fatalf("order: %+v, %v", o, err)
	}
	set := func(enabled bool) {
		t.Helper()
		if _, _, err := e.h.CA.ChangeAuthority(ctx, "web", store.AuthorityChange{Enabled: &enabled}, "test"); err != nil {
			t.Fatal(err)
		}
	}
	outOfService := func(what string, err error) {
		t.Helper()
		var ae *xacme.Error
		if !errors.As(err, &ae) || ae.StatusCode != 503 || ae.ProblemType != "urn:signet:error:disabled" || ae.Header.Get("Retry-After") == "" {
			t.Fatalf("%s out of service: %v, want 503 urn:signet:error:disabled with Retry-After", what, err)
		}
	}
	// The client would retry a 503 after its Retry-After until its context ends.
	c.RetryBackoff = func(int, *http.Request, *http.Response) time.Duration { return 0 }
	set(false)
	_, _, err = c.CreateOrderCert(ctx, o.FinalizeURL, csr(t, nil, name), true)
	outOfService("finalize", err)
	_, err = c.AuthorizeOrder(ctx, []xacme.AuthzID{{Type: "dns", Value: "other.web.signet.test"}})
	outOfService("newOrder", err)

	set(true)
	chain, _, err := c.CreateOrderCert(ctx, o.FinalizeURL, csr(t, nil, name), true)
	if err != nil {
		t.Fatalf("finalize back in service: %v", err)
	}
	e.verify(chain, name)
}
