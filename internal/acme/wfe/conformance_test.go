package wfe_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	xacme "golang.org/x/crypto/acme"
)

// TestConformance: RFC 8555 details a client can trip on. The orders list
// pages through its next link (the JWS url carries the query), and leaves
// invalid orders out; an account update that echoes "status":"valid" is
// accepted; a deactivated account's key gets unauthorized from newAccount;
// a wrong Content-Type is 415 while a parameter is fine; a refused JWS
// algorithm lists the accepted ones.
func TestConformance(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := newKey(t)
	c := e.client(key)
	acct := e.register(c)
	d, _ := c.Discover(ctx)

	// 101 orders: two pages. The newest is made invalid by deactivating its
	// authorization, and is not listed.
	var want []string
	for i := range 101 {
		o, err := c.AuthorizeOrder(ctx, []xacme.AuthzID{{Type: "dns", Value: fmt.Sprintf("p%d.signet.test", i)}})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, o.URI)
	}
	last, _ := c.GetOrder(ctx, want[100])
	if err := c.RevokeAuthorization(ctx, last.AuthzURLs[0]); err != nil {
		t.Fatal(err)
	}
	want = want[:100]
	next := regexp.MustCompile(`<([^>]+)>;\s*rel="next"`)
	var got []string
	url := acct.OrdersURL
	for pages := 0; url != "" && pages < 5; pages++ {
		resp, body, p := e.signed(key, acct.URI, url, nil)
		if p != nil {
			t.Fatalf("orders page %s: %s %s", url, p.Type, p.Detail)
		}
		var list struct{ Orders []string }
		json.Unmarshal(body, &list)
		got = append(got, list.Orders...)
		url = ""
		for _, l := range resp.Header.Values("Link") {
			if m := next.FindStringSubmatch(l); m != nil {
				url = m[1]
			}
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("orders listed over the pages: %d, want the %d valid ones", len(got), len(want))
	}

	// Echoing the account back, status included.
	if _, _, p := e.signed(key, acct.URI, acct.URI, []byte(`{"status":"valid","contact":["mailto:echo@example.org"]}`)); p != nil {
		t.Fatalf("update with status valid: %s %s", p.Type, p.Detail)
	}

	// Content-Type: a parameter is fine, another type is 415.
	body := signJWS(t, key, acct.URI, acct.URI, e.nonce(), nil, nil)
	resp, err := e.ts.Client().Post(acct.URI, "application/jose+json; charset=utf-8", bytes.NewReader(body))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("Content-Type with a parameter: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	resp, err = e.ts.Client().Post(acct.URI, "application/json", bytes.NewReader(signJWS(t, key, acct.URI, acct.URI, e.nonce(), nil, nil)))
	if err != nil || resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("Content-Type application/json: %v %v, want 415", resp.StatusCode, err)
	}
	resp.Body.Close()

	// A refused algorithm: the problem lists the accepted ones.
	_, _, p := e.post(d.OrderURL, signJWS(t, key, acct.URI, d.OrderURL, e.nonce(), nil,
		&jwsOpts{alg: jose.HS256, key: []byte("0123456789abcdef0123456789abcdef")}))
	wantProblem(t, p, "badSignatureAlgorithm")
	if !slices.Contains(p.Algorithms, "ES256") || !slices.Contains(p.Algorithms, "ES512") {
		t.Errorf("badSignatureAlgorithm lists %v", p.Algorithms)
	}

	// A CSR that names the identifier in its common name only (§7.4): the
	// certificate carries it as a subject alternative name.
	o := e.readyOrder(c, "cn-only.signet.test")
	certKey := newKey(t)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "cn-only.signet.test"}}, certKey)
	if err != nil {
		t.Fatal(err)
	}
	chain, _, err := c.CreateOrderCert(ctx, o.FinalizeURL, der, true)
	if err != nil {
		t.Fatalf("finalize with a common-name-only CSR: %v", err)
	}
	e.verify(chain, "cn-only.signet.test")

	// POST-as-GET of the directory and of newNonce (§6.3).
	resp, body, p = e.signed(key, acct.URI, e.dirURL, nil)
	var dir struct{ NewOrder string }
	if json.Unmarshal(body, &dir); p != nil || resp.StatusCode != http.StatusOK || dir.NewOrder != d.OrderURL {
		t.Fatalf("POST-as-GET of the directory: %d %s", resp.StatusCode, body)
	}
	if resp, _, p = e.signed(key, acct.URI, d.NonceURL, nil); p != nil || resp.StatusCode != http.StatusNoContent || resp.Header.Get("Replay-Nonce") == "" {
		t.Fatalf("POST-as-GET of newNonce: %d", resp.StatusCode)
	}
	_, _, p = e.signed(key, acct.URI, d.NonceURL, []byte(`{}`))
	wantProblem(t, p, "malformed")

	// A valid authorization expires with its order (§7.1.6).
	valid := e.readyOrder(c, "expiring.signet.test")
	e.ahead.Store(int64(25 * time.Hour)) // nonces too: raw requests, not the client's
	_, body, p = e.signed(key, acct.URI, valid.AuthzURLs[0], nil)
	e.ahead.Store(0)
	var az struct{ Status string }
	if json.Unmarshal(body, &az); p != nil || az.Status != "expired" {
		t.Fatalf("a valid authorization a day later: %s; want expired", body)
	}

	// A deactivated account's key cannot come back through newAccount.
	if err := c.DeactivateReg(ctx); err != nil {
		t.Fatal(err)
	}
	_, _, p = e.post(d.RegURL, signJWS(t, key, "", d.RegURL, e.nonce(), []byte(`{"termsOfServiceAgreed":true}`), nil))
	wantProblem(t, p, "unauthorized")
}

// TestES512Account: an account with a P-521 key, whose requests are signed
// with ES512, registers, updates its contacts and gets a certificate.
func TestES512Account(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c := e.client(key)
	acct := e.register(c)
	acct.Contact = []string{"mailto:p521@example.org"}
	if got, err := c.UpdateReg(ctx, acct); err != nil || !slices.Equal(got.Contact, acct.Contact) {
		t.Fatalf("contact update: %+v, %v", got, err)
	}
	o := e.readyOrder(c, "p521.signet.test")
	chain, _, err := c.CreateOrderCert(ctx, o.FinalizeURL, csr(t, nil, "p521.signet.test"), true)
	if err != nil {
		t.Fatalf("finalize: %v", err)
	}
	e.verify(chain, "p521.signet.test")
}
