package wfe_test

import (
	"context"
	"testing"
	"time"

	xacme "golang.org/x/crypto/acme"

	"signet/internal/acme/wfe"
)

// TestAuthzReuse: with reuse on, an account's second order for a name it
// validated comes back ready and names the same authorization, and
// issues without a challenge; another account's order for the name
// waits for its own validation; once the client deactivates the
// authorization, a new order validates again and an order that reused it
// is refused.
func TestAuthzReuse(t *testing.T) {
	e := newEnvWith(t, func(o *wfe.Options) { o.AuthzReuse = 7 * 24 * time.Hour })
	ctx := context.Background()
	c := e.client(nil)
	e.register(c)
	ids := xacme.DomainIDs("web.signet.test")
	first, err := c.AuthorizeOrder(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	e.solve(c, first.AuthzURLs[0], "http-01")
	if _, err := c.WaitOrder(ctx, first.URI); err != nil {
		t.Fatal(err)
	}

	second, err := c.AuthorizeOrder(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if second.Status != xacme.StatusReady || len(second.AuthzURLs) != 1 || second.AuthzURLs[0] != first.AuthzURLs[0] {
		t.Fatalf("second order: %s with authorizations %q; want ready with %q", second.Status, second.AuthzURLs, first.AuthzURLs)
	}
	chain, _, err := c.CreateOrderCert(ctx, second.FinalizeURL, csr(t, nil, "web.signet.test"), true)
	if err != nil {
		t.Fatal(err)
	}
	e.verify(chain, "web.signet.test")

	other := e.client(nil)
	e.register(other)
	if o, err := other.AuthorizeOrder(ctx, ids); err != nil || o.Status != xacme.StatusPending || o.AuthzURLs[0] == first.AuthzURLs[0] {
		t.Fatalf("another account's order: %+v, %v; want pending with its own authorization", o, err)
	}

	third, err := c.AuthorizeOrder(ctx, ids)
	if err != nil || third.Status != xacme.StatusReady {
		t.Fatalf("third order: %+v, %v", third, err)
	}
	if err := c.RevokeAuthorization(ctx, first.AuthzURLs[0]); err != nil {
		t.Fatal(err)
	}
	if o, err := c.AuthorizeOrder(ctx, ids); err != nil || o.Status != xacme.StatusPending {
		t.Fatalf("an order after deactivation: %+v, %v; want pending", o, err)
	}
	if _, _, err := c.CreateOrderCert(ctx, third.FinalizeURL, csr(t, nil, "web.signet.test"), true); err == nil {
		t.Fatal("an order that reused a deactivated authorization issued")
	}
}
