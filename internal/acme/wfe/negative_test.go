package wfe_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	xacme "golang.org/x/crypto/acme"

	"signet/internal/policy"
	"signet/internal/store"
)

// TestNegative sends what a broken or hostile client would, and checks
// each gets the right problem type and changes nothing.
func TestNegative(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	keyA := newKey(t)
	cA := e.client(keyA)
	acctA := e.register(cA)
	keyB := newKey(t)
	cB := e.client(keyB)
	acctB := e.register(cB)
	ready := e.readyOrder(cA, "neg.signet.test")
	d, _ := cA.Discover(ctx)

	// A certificate of A's, for the cross-account cases.
	issued := e.readyOrder(cA, "issued.signet.test")
	chain, certURL, err := cA.CreateOrderCert(ctx, issued.FinalizeURL, csr(t, nil, "issued.signet.test"), true)
	if err != nil {
		t.Fatal(err)
	}
	pending, err := cA.AuthorizeOrder(ctx, []xacme.AuthzID{{Type: "dns", Value: "pending.signet.test"}})
	if err != nil {
		t.Fatal(err)
	}

	certsBefore, _ := e.h.Store.Certificates(ctx, store.Filter{WithInternal: true})
	finalize := func(der []byte) []byte {
		b, _ := json.Marshal(map[string]string{"csr": base64.RawURLEncoding.EncodeToString(der)})
		return b
	}
	revokeA, _ := json.Marshal(map[string]any{"certificate": base64.RawURLEncoding.EncodeToString(chain[0])})
	newOrder := func(names ...string) []byte {
		var ids []map[string]string
		for _, n := range names {
			ids = append(ids, map[string]string{"type": "dns", "value": n})
		}
		b, _ := json.Marshal(map[string]any{"identifiers": ids})
		return b
	}
	usedNonce := e.nonce()
	e.post(acctA.URI, signJWS(t, keyA, acctA.URI, acctA.URI, usedNonce, nil, nil))

	for _, tc := range []struct {
		name string
		url  string
		body func(url string) []byte
		want string
	}{
		{"bad signature", acctA.URI, func(u string) []byte {
			return signJWS(t, keyA, acctA.URI, u, e.nonce(), nil, &jwsOpts{key: keyB})
		}, "malformed"},
		{"unknown nonce", acctA.URI, func(u string) []byte {
			return signJWS(t, keyA, acctA.URI, u, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", nil, nil)
		}, "badNonce"},
		{"replayed nonce", acctA.URI, func(u string) []byte { return signJWS(t, keyA, acctA.URI, u, usedNonce, nil, nil) }, "badNonce"},
		{"no nonce", acctA.URI, func(u string) []byte { return signJWS(t, keyA, acctA.URI, u, "", nil, nil) }, "badNonce"},
		{"url mismatch", acctA.URI, func(u string) []byte { return signJWS(t, keyA, acctA.URI, d.OrderURL, e.nonce(), nil, nil) }, "unauthorized"},
		{"unsupported alg", acctA.URI, func(u string) []byte {
			return signJWS(t, keyA, acctA.URI, u, e.nonce(), nil, &jwsOpts{alg: jose.HS256, key: []byte("0123456789abcdef0123456789abcdef")})
		}, "badSignatureAlgorithm"},
		{"unknown account", d.OrderURL, func(u string) []byte {
			return signJWS(t, keyA, acctA.URI+"x", u, e.nonce(), newOrder("x.signet.test"), nil)
		}, "accountDoesNotExist"},
		{"jwk where kid is required", d.OrderURL, func(u string) []byte {
			return signJWS(t, keyA, "", u, e.nonce(), newOrder("x.signet.test"), nil)
		}, "malformed"},
		{"account key as certificate key", ready.FinalizeURL, func(u string) []byte {
			return signJWS(t, keyA, acctA.URI, u, e.nonce(), finalize(csr(t, keyA, "neg.signet.test")), nil)
		}, "badCSR"},
		{"CSR names not matching the order", ready.FinalizeURL, func(u string) []byte {
			return signJWS(t, keyA, acctA.URI, u, e.nonce(), finalize(csr(t, nil, "neg.signet.test", "more.signet.test")), nil)
		}, "badCSR"},
		{"CSR garbage", ready.FinalizeURL, func(u string) []byte {
			return signJWS(t, keyA, acctA.URI, u, e.nonce(), finalize([]byte("not a CSR")), nil)
		}, "badCSR"},
		{"finalize before ready", pending.FinalizeURL, func(u string) []byte {
			return signJWS(t, keyA, acctA.URI, u, e.nonce(), finalize(csr(t, nil, "pending.signet.test")), nil)
		}, "orderNotReady"},
		{"another account's order", ready.URI, func(u string) []byte { return signJWS(t, keyB, acctB.URI, u, e.nonce(), nil, nil) }, "unauthorized"},
		{"another account's finalize", ready.FinalizeURL, func(u string) []byte {
			return signJWS(t, keyB, acctB.URI, u, e.nonce(), finalize(csr(t, nil, "neg.signet.test")), nil)
		}, "unauthorized"},
		{"another account's authz", ready.AuthzURLs[0], func(u string) []byte {
			return signJWS(t, keyB, acctB.URI, u, e.nonce(), []byte(`{"status":"deactivated"}`), nil)
		}, "unauthorized"},
		{"another account's certificate", certURL, func(u string) []byte { return signJWS(t, keyB, acctB.URI, u, e.nonce(), nil, nil) }, "unauthorized"},
		{"another account's revocation", d.RevokeURL, func(u string) []byte { return signJWS(t, keyB, acctB.URI, u, e.nonce(), revokeA, nil) }, "unauthorized"},
		{"another account's update", acctA.URI, func(u string) []byte {
			return signJWS(t, keyB, acctB.URI, u, e.nonce(), []byte(`{"status":"deactivated"}`), nil)
		}, "unauthorized"},
		{"bad revocation reason", d.RevokeURL, func(u string) []byte {
			b, _ := json.Marshal(map[string]any{"certificate": base64.RawURLEncoding.EncodeToString(chain[0]), "reason": 7})
			return signJWS(t, keyA, acctA.URI, u, e.nonce(), b, nil)
		}, "badRevocationReason"},
		{"oversized body", d.OrderURL, func(u string) []byte {
			return signJWS(t, keyA, acctA.URI, u, e.nonce(), []byte(`{"identifiers":[],"x":"`+strings.Repeat("a", 70<<10)+`"}`), nil)
		}, "malformed"},
		{"malformed JSON payload", d.OrderURL, func(u string) []byte {
			return signJWS(t, keyA, acctA.URI, u, e.nonce(), []byte(`{"identifiers":`), nil)
		}, "malformed"},
		{"malformed JWS", d.OrderURL, func(u string) []byte { return []byte(`{"protected": 1`) }, "malformed"},
		{"compact JWS", d.OrderURL, func(u string) []byte { return []byte(`eyJhbGciOiJFUzI1NiJ9.e30.AAAA`) }, "malformed"},
		{"unsupported identifier type", d.OrderURL, func(u string) []byte {
			return signJWS(t, keyA, acctA.URI, u, e.nonce(), []byte(`{"identifiers":[{"type":"email","value":"a@example.org"}]}`), nil)
		}, "unsupportedIdentifier"},
		{"notAfter", d.OrderURL, func(u string) []byte {
			return signJWS(t, keyA, acctA.URI, u, e.nonce(), []byte(`{"identifiers":[{"type":"dns","value":"a.signet.test"}],"notAfter":"2030-01-01T00:00:00Z"}`), nil)
		}, "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body, p := e.post(tc.url, tc.body(tc.url))
			if p == nil {
				t.Fatalf("answered %d %s, want a %s problem", resp.StatusCode, body, tc.want)
			}
			wantProblem(t, p, tc.want)
			if resp.Header.Get("Replay-Nonce") == "" {
				t.Error("a problem answer must carry a fresh nonce")
			}
		})
	}
	// Nothing changed: no certificate, the ready order still ready, A's
	// account and certificate as they were.
	certsAfter, _ := e.h.Store.Certificates(ctx, store.Filter{WithInternal: true})
	if len(certsAfter) != len(certsBefore) {
		t.Errorf("the negative cases issued %d certificates", len(certsAfter)-len(certsBefore))
	}
	if o, _ := cA.GetOrder(ctx, ready.URI); o.Status != xacme.StatusReady {
		t.Errorf("ready order is %s", o.Status)
	}
	if a, _ := cA.GetReg(ctx, ""); a == nil || a.Status != xacme.StatusValid {
		t.Errorf("account A changed: %+v", a)
	}
	for _, c := range certsAfter {
		if c.Status != store.Valid {
			t.Errorf("certificate %s was revoked", c.Serial)
		}
	}
	// The ready order still finalizes with a proper CSR.
	if _, _, err := cA.CreateOrderCert(ctx, ready.FinalizeURL, csr(t, nil, "neg.signet.test"), true); err != nil {
		t.Fatalf("finalize after the negative cases: %v", err)
	}
}

// TestForbiddenIdentifiers: an authority's name policy refuses orders with
// rejectedIdentifier, one subproblem per refused name.
func TestForbiddenIdentifiers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.authority("corp", policy.Policy{DNS: []string{"corp.example"}})
	key := newKey(t)
	c := e.client(key)
	c.DirectoryURL = e.ts.URL + "/acme/corp/directory"
	acct := e.register(c)
	d, _ := c.Discover(ctx)
	body := []byte(`{"identifiers":[{"type":"dns","value":"www.corp.example"},{"type":"dns","value":"evil.example"},` +
		`{"type":"dns","value":"*.corp.example"},{"type":"ip","value":"10.0.0.1"}]}`)
	resp, raw, p := e.post(d.OrderURL, signJWS(t, key, acct.URI, d.OrderURL, e.nonce(), body, nil))
	wantProblem(t, p, "rejectedIdentifier")
	if len(p.Subproblems) != 3 {
		t.Fatalf("%d subproblems, want 3 (evil.example, the wildcard, the IP): %s", len(p.Subproblems), raw)
	}
	var named []string
	for _, sp := range p.Subproblems {
		if sp.Type != "urn:ietf:params:acme:error:rejectedIdentifier" {
			t.Errorf("subproblem %+v", sp)
		}
		named = append(named, sp.Identifier.Type+":"+sp.Identifier.Value)
	}
	slices.Sort(named)
	// Each names its identifier as the order did, a wildcard with its "*.".
	if want := []string{"dns:*.corp.example", "dns:evil.example", "ip:10.0.0.1"}; !slices.Equal(named, want) {
		t.Errorf("subproblems name %v, want %v", named, want)
	}
	if resp.StatusCode != 400 {
		t.Errorf("status %d", resp.StatusCode)
	}
	list, _ := e.h.Store.ACMEOrders(ctx, store.ACMEOrderFilter{AccountID: acct.URI[strings.LastIndex(acct.URI, "/")+1:]})
	if len(list) != 0 {
		t.Errorf("a refused order was recorded")
	}
	// The root has no ACME server.
	r, _ := e.ts.Client().Get(e.ts.URL + "/acme/root/directory")
	if r.StatusCode != 404 {
		t.Errorf("root directory: %d", r.StatusCode)
	}
}
