package wfe_test

import (
	"context"
	"testing"

	xacme "golang.org/x/crypto/acme"
)

// TestChallengeTypes issues through every challenge type, for DNS names, a
// wildcard and an IP address, with golang.org/x/crypto/acme as the client.
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
