package wfe_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	xacme "golang.org/x/crypto/acme"

	"signet/internal/acme/ari"
	"signet/internal/acme/eab"
	"signet/internal/store"
)

// TestAccounts: newAccount (incl. onlyReturnExisting), update, orders
// list, keyChange and deactivation.
func TestAccounts(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := newKey(t)
	c := e.client(key)

	// onlyReturnExisting before the account exists.
	_, _, p := e.post(e.ts.URL+"/acme/default/new-account",
		signJWS(t, key, "", e.ts.URL+"/acme/default/new-account", e.nonce(), []byte(`{"onlyReturnExisting":true}`), nil))
	wantProblem(t, p, "accountDoesNotExist")

	acct := e.register(c)
	if acct.Status != xacme.StatusValid || len(acct.Contact) != 1 || acct.OrdersURL == "" {
		t.Fatalf("account %+v", acct)
	}
	resp, body, p := e.post(e.ts.URL+"/acme/default/new-account",
		signJWS(t, key, "", e.ts.URL+"/acme/default/new-account", e.nonce(), []byte(`{"onlyReturnExisting":true}`), nil))
	if p != nil || resp.StatusCode != 200 || resp.Header.Get("Location") != acct.URI {
		t.Fatalf("onlyReturnExisting: %d %s %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}

	acct.Contact = []string{"mailto:a@example.org", "mailto:b@example.org"}
	if got, err := c.UpdateReg(ctx, acct); err != nil || len(got.Contact) != 2 {
		t.Fatalf("update: %+v, %v", got, err)
	}
	_, _, p = e.signed(key, acct.URI, acct.URI, []byte(`{"contact":["tel:+1555"]}`))
	wantProblem(t, p, "unsupportedContact")

	o := e.readyOrder(c, "acct.signet.test")
	_, body, p = e.signed(key, acct.URI, acct.OrdersURL, nil)
	var list struct{ Orders []string }
	if json.Unmarshal(body, &list); p != nil || len(list.Orders) != 1 || list.Orders[0] != o.URI {
		t.Fatalf("orders list %s, want [%s]", body, o.URI)
	}

	// Key rollover: the old key stops working, the new one works.
	newK := newKey(t)
	if err := c.AccountKeyRollover(ctx, newK); err != nil {
		t.Fatal(err)
	}
	_, _, p = e.signed(key, acct.URI, acct.URI, nil)
	wantProblem(t, p, "malformed")
	if _, _, p = e.signed(newK, acct.URI, acct.URI, nil); p != nil {
		t.Fatalf("new key refused: %+v", p)
	}
	// Rolling over to a key that has an account is a conflict.
	other := e.client(nil)
	e.register(other)
	c.Key = newK
	err := c.AccountKeyRollover(ctx, other.Key)
	var ae *xacme.Error
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusConflict {
		t.Fatalf("rollover to a taken key: %v", err)
	}

	if err := c.DeactivateReg(ctx); err != nil {
		t.Fatal(err)
	}
	_, _, p = e.signed(newK, acct.URI, acct.URI, nil)
	wantProblem(t, p, "unauthorized")
}

// TestRevocationAndARI: revocation by the account and by the certificate
// key, renewal information before and after, replaces on newOrder, and the
// profiles the directory advertises.
func TestRevocationAndARI(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := newKey(t)
	c := e.client(key)
	acct := e.register(c)

	d, err := c.Discover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Profiles["shortlived"]; !ok || d.Profiles["default"] == "" {
		t.Fatalf("directory profiles %v", d.Profiles)
	}

	issue := func(name string, opts ...xacme.OrderOption) (*x509.Certificate, [][]byte, *xacme.Order) {
		t.Helper()
		o, err := c.AuthorizeOrder(ctx, []xacme.AuthzID{{Type: "dns", Value: name}}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range o.AuthzURLs {
			e.solve(c, u, "http-01")
		}
		certKey := newKey(t)
		chain, _, err := c.CreateOrderCert(ctx, o.FinalizeURL, csr(t, certKey, name), true)
		if err != nil {
			t.Fatal(err)
		}
		return e.verify(chain, name), chain, o
	}
	short, _, _ := issue("short.signet.test", xacme.WithOrderIssuanceProfile("shortlived"))
	if life := short.NotAfter.Sub(short.NotBefore); life > 7*24*time.Hour+time.Hour {
		t.Errorf("shortlived profile gave %s", life)
	}
	_, _, p := e.signed(key, acct.URI, d.OrderURL, []byte(`{"identifiers":[{"type":"dns","value":"x.signet.test"}],"profile":"nope"}`))
	wantProblem(t, p, "invalidProfile")

	leaf, chain, _ := issue("ari.signet.test")
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life < 20*24*time.Hour {
		t.Errorf("default profile gave %s", life)
	}
	certID := ari.CertID(leaf)
	info := func() (start, end time.Time) {
		t.Helper()
		resp, err := e.ts.Client().Get(e.ts.URL + "/acme/default/renewal-info/" + certID)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ri struct {
			SuggestedWindow struct{ Start, End time.Time } `json:"suggestedWindow"`
		}
		b, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(b, &ri); err != nil || resp.StatusCode != 200 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("renewal info: %d %s", resp.StatusCode, b)
		}
		return ri.SuggestedWindow.Start, ri.SuggestedWindow.End
	}
	start, end := info()
	if !start.After(leaf.NotBefore) || !end.After(start) || !end.Before(leaf.NotAfter) {
		t.Errorf("window %s..%s for a certificate valid %s..%s", start, end, leaf.NotBefore, leaf.NotAfter)
	}
	resp, _ := e.ts.Client().Get(e.ts.URL + "/acme/default/renewal-info/AAAA.AAAA")
	if resp.StatusCode != 404 {
		t.Errorf("renewal info of an unknown certificate: %d", resp.StatusCode)
	}

	// replaces: an order sharing no name with the certificate is refused.
	_, _, p = e.signed(key, acct.URI, d.OrderURL, []byte(`{"identifiers":[{"type":"dns","value":"unrelated.signet.test"}],"replaces":"`+certID+`"}`))
	wantProblem(t, p, "malformed")
	// replaces: once, by the account that holds the certificate.
	payload := `{"identifiers":[{"type":"dns","value":"ari.signet.test"}],"replaces":"` + certID + `"}`
	resp, body, p := e.signed(key, acct.URI, d.OrderURL, []byte(payload))
	if p != nil || resp.StatusCode != 201 || !strings.Contains(string(body), certID) {
		t.Fatalf("order replacing: %d %s", resp.StatusCode, body)
	}
	_, _, p = e.signed(key, acct.URI, d.OrderURL, []byte(payload))
	wantProblem(t, p, "alreadyReplaced")
	otherKey := newKey(t)
	other := e.client(otherKey)
	oacct := e.register(other)
	_, _, p = e.signed(otherKey, oacct.URI, d.OrderURL, []byte(payload))
	wantProblem(t, p, "unauthorized")

	// Revocation by the account.
	if err := c.RevokeCert(ctx, nil, chain[0], xacme.CRLReasonSuperseded); err != nil {
		t.Fatal(err)
	}
	rec, _ := e.h.Store.Certificate(ctx, strings.ToLower(leaf.SerialNumber.Text(16)))
	if rec.Status != store.Revoked || rec.RevocationReason != 4 {
		t.Fatalf("after revocation: %+v", rec.Status)
	}
	revokeBody, _ := json.Marshal(map[string]any{"certificate": base64.RawURLEncoding.EncodeToString(chain[0])})
	_, _, p = e.signed(key, acct.URI, d.RevokeURL, revokeBody)
	wantProblem(t, p, "alreadyRevoked")
	if start, _ := info(); start.After(time.Now()) {
		t.Errorf("a revoked certificate's window starts in the future: %s", start)
	}

	// Revocation by another account that holds valid authorizations for
	// every name of the certificate (§7.6), not by one that holds some.
	name2, name3 := "held.signet.test", "www.held.signet.test"
	o2, err := c.AuthorizeOrder(ctx, []xacme.AuthzID{{Type: "dns", Value: name2}, {Type: "dns", Value: name3}})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range o2.AuthzURLs {
		e.solve(c, u, "http-01")
	}
	chain2, _, err := c.CreateOrderCert(ctx, o2.FinalizeURL, csr(t, newKey(t), name2, name3), true)
	if err != nil {
		t.Fatal(err)
	}
	holder := func(names ...string) *xacme.Client {
		k := newKey(t)
		h := e.client(k)
		e.register(h)
		var ids []xacme.AuthzID
		for _, n := range names {
			ids = append(ids, xacme.AuthzID{Type: "dns", Value: n})
		}
		ho, err := h.AuthorizeOrder(ctx, ids)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range ho.AuthzURLs {
			e.solve(h, u, "http-01")
		}
		return h // validated, never finalized
	}
	leaf2, _ := x509.ParseCertificate(chain2[0])
	serial2 := strings.ToLower(leaf2.SerialNumber.Text(16))
	if err := holder(name2).RevokeCert(ctx, nil, chain2[0], xacme.CRLReasonKeyCompromise); err == nil {
		t.Fatal("an account holding an authorization for one of two names revoked the certificate")
	}
	if rec, _ := e.h.Store.Certificate(ctx, serial2); rec.Status == store.Revoked {
		t.Fatal("refused revocation changed the certificate")
	}
	if err := holder(name3, name2).RevokeCert(ctx, nil, chain2[0], xacme.CRLReasonKeyCompromise); err != nil {
		t.Fatalf("an account holding authorizations for every name: %v", err)
	}
	if rec, _ := e.h.Store.Certificate(ctx, serial2); rec.Status != store.Revoked || rec.RevocationReason != 1 {
		t.Fatalf("revocation by an authorized account: %+v", rec.Status)
	}

	// Revocation by the certificate key, with a client that has no account.
	name := "bykey.signet.test"
	o, err := c.AuthorizeOrder(ctx, []xacme.AuthzID{{Type: "dns", Value: name}})
	if err != nil {
		t.Fatal(err)
	}
	e.solve(c, o.AuthzURLs[0], "http-01")
	certKey := newKey(t)
	chain, _, err = c.CreateOrderCert(ctx, o.FinalizeURL, csr(t, certKey, name), true)
	if err != nil {
		t.Fatal(err)
	}
	// A key that is neither the account's nor the certificate's is refused.
	stranger := e.client(nil)
	if err := stranger.RevokeCert(ctx, newKey(t), chain[0], xacme.CRLReasonKeyCompromise); err == nil {
		t.Fatal("a stranger's key revoked the certificate")
	}
	if err := stranger.RevokeCert(ctx, certKey, chain[0], xacme.CRLReasonKeyCompromise); err != nil {
		t.Fatal(err)
	}
	leaf, _ = x509.ParseCertificate(chain[0])
	if rec, _ := e.h.Store.Certificate(ctx, strings.ToLower(leaf.SerialNumber.Text(16))); rec.Status != store.Revoked || rec.RevocationReason != 1 {
		t.Fatalf("revocation by certificate key: %+v", rec.Status)
	}
}

// TestAuthzDeactivation: a deactivated authorization makes its order invalid.
func TestAuthzDeactivation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client(nil)
	e.register(c)
	o, err := c.AuthorizeOrder(ctx, []xacme.AuthzID{{Type: "dns", Value: "deact.signet.test"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RevokeAuthorization(ctx, o.AuthzURLs[0]); err != nil {
		t.Fatal(err)
	}
	az, _ := c.GetAuthorization(ctx, o.AuthzURLs[0])
	o, _ = c.GetOrder(ctx, o.URI)
	if az.Status != xacme.StatusDeactivated || o.Status != xacme.StatusInvalid {
		t.Fatalf("authz %s, order %s", az.Status, o.Status)
	}
}

// TestEAB: an authority requiring external account binding refuses plain
// accounts and accepts a binding key once.
func TestEAB(t *testing.T) {
	e := newEnv(t, "default")
	ctx := context.Background()
	d, err := e.client(nil).Discover(ctx)
	if err != nil || !d.ExternalAccountRequired {
		t.Fatalf("directory does not require EAB: %+v %v", d, err)
	}
	_, err = e.client(nil).Register(ctx, &xacme.Account{}, xacme.AcceptTOS)
	var ae *xacme.Error
	if !errors.As(err, &ae) || ae.ProblemType != "urn:ietf:params:acme:error:externalAccountRequired" {
		t.Fatalf("register without EAB: %v", err)
	}
	kid, hmacKey, err := eab.Create(ctx, e.h.Store, e.sealer, "default", "test")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := base64URL(hmacKey)
	bind := &xacme.ExternalAccountBinding{KID: kid, Key: key}
	if _, err := e.client(nil).Register(ctx, &xacme.Account{ExternalAccountBinding: bind}, xacme.AcceptTOS); err != nil {
		t.Fatal(err)
	}
	_, err = e.client(nil).Register(ctx, &xacme.Account{ExternalAccountBinding: bind}, xacme.AcceptTOS)
	if !errors.As(err, &ae) || ae.ProblemType != "urn:ietf:params:acme:error:unauthorized" {
		t.Fatalf("reusing an EAB key: %v", err)
	}
	wrong := &xacme.ExternalAccountBinding{KID: kid, Key: []byte("not the key, not the key, not it")}
	kid2, _, _ := eab.Create(ctx, e.h.Store, e.sealer, "default", "test")
	wrong.KID = kid2
	if _, err = e.client(nil).Register(ctx, &xacme.Account{ExternalAccountBinding: wrong}, xacme.AcceptTOS); err == nil {
		t.Fatal("a wrong HMAC key was accepted")
	}
}

func base64URL(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

// TestProcessing: a validation that outlasts the challenge POST's wait is
// reported as processing (with Retry-After), to that POST and to later
// reads of the challenge, until its outcome is recorded.
func TestProcessing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client(newKey(t))
	e.register(c)
	o, ch := e.challenge(t, c, "slow.signet.test", "http-01")
	ka, _ := c.HTTP01ChallengeResponse(ch.Token)
	release := make(chan struct{})
	e.mu.Lock()
	e.http[ch.Token], e.hold = ka, release
	e.mu.Unlock()
	got, err := c.Accept(ctx, ch)
	if err != nil || got.Status != "processing" {
		t.Fatalf("challenge POST during a slow validation: %+v, %v; want processing", got, err)
	}
	if got, err := c.GetChallenge(ctx, ch.URI); err != nil || got.Status != "processing" {
		t.Fatalf("challenge read during the validation: %+v, %v; want processing", got, err)
	}
	if az, err := c.GetAuthorization(ctx, o.AuthzURLs[0]); err != nil || az.Status != "pending" {
		t.Fatalf("authorization during the validation: %+v, %v; want pending", az, err)
	}
	close(release)
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := c.WaitAuthorization(wctx, o.AuthzURLs[0]); err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetChallenge(ctx, ch.URI); err != nil || got.Status != "valid" {
		t.Fatalf("challenge after the validation: %+v, %v; want valid", got, err)
	}
}

// TestHTTP01Redirects: http-01 follows redirects (RFC 8555 §8.3) to another
// path, another host and https, on the standard ports only (here mapped
// to the test ports), and gives up on loops, IP addresses and other
// schemes or ports. How another host failed is not told.
func TestHTTP01Redirects(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client(newKey(t))
	e.register(c)
	e.mu.Lock()
	e.http["secret-page"] = "INTRANET: payroll figures"
	e.aRecords["down.signet.test"] = []net.IP{}
	e.mu.Unlock()
	// What the challenge error says, where it matters.
	detail := map[string]string{
		"IP address":          "IP addresses are not followed",
		"another host's 404":  "redirect target http://intranet.signet.test/moved/missing failed",
		"another host's page": "redirect target http://intranet.signet.test/moved/secret-page failed",
		"another host down":   "redirect target http://down.signet.test/moved/",
	}
	for i, tc := range []struct {
		name, to string // to: {name} and {token} stand for the name and the token
		valid    bool
	}{
		{"path", "/moved/{token}", true},
		{"other host", "http://elsewhere.signet.test/moved/{token}", true},
		{"https", "https://{name}/moved/{token}", true},
		{"https on 443", "https://{name}:443/moved/{token}", true},
		{"other port", "http://{name}:8080/moved/{token}", false},
		{"https on 80", "https://{name}:80/moved/{token}", false},
		{"other scheme", "ftp://{name}/moved/{token}", false},
		{"loop", "/.well-known/acme-challenge/{token}", false},
		{"another host's page", "http://intranet.signet.test/moved/secret-page", false},
		{"another host's 404", "http://intranet.signet.test/moved/missing", false},
		{"another host down", "http://down.signet.test/moved/{token}", false},
		{"IP address", "http://127.0.0.1/moved/{token}", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("r%d.signet.test", i)
			o, ch := e.challenge(t, c, name, "http-01")
			ka, _ := c.HTTP01ChallengeResponse(ch.Token)
			e.mu.Lock()
			e.http[ch.Token] = ka
			e.redirects["/.well-known/acme-challenge/"+ch.Token] = strings.NewReplacer("{name}", name, "{token}", ch.Token).Replace(tc.to)
			e.mu.Unlock()
			if _, err := c.Accept(ctx, ch); err != nil {
				t.Fatal(err)
			}
			wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			_, err := c.WaitAuthorization(wctx, o.AuthzURLs[0])
			if tc.valid && err != nil {
				t.Fatalf("redirect to %s: %v", tc.to, err)
			}
			if !tc.valid && err == nil {
				t.Fatalf("redirect to %s was followed to a valid authorization", tc.to)
			}
			// An order a failed challenge made invalid says why.
			if got, err := c.GetOrder(ctx, o.URI); !tc.valid && (err != nil || got.Status != xacme.StatusInvalid ||
				got.Error == nil || !strings.Contains(got.Error.ProblemType, "acme:error:") || got.Error.Detail == "") {
				t.Fatalf("the invalid order: %+v, %v; want status invalid with the challenge's problem", got, err)
			}
			// What another host serves does not come back in the error.
			got, _ := c.GetChallenge(ctx, ch.URI)
			if got != nil && got.Error != nil && strings.Contains(got.Error.Error(), "INTRANET") {
				t.Fatalf("the challenge error shows another host's page: %v", got.Error)
			}
			if want := detail[tc.name]; want != "" && (got == nil || got.Error == nil || !strings.Contains(got.Error.Error(), want)) {
				t.Fatalf("the challenge error: %v; want it to say %q", got.Error, want)
			}
		})
	}
}

// TestTLSALPN01Strict: tls-alpn-01 tries every address of the name (the
// first refuses connections here), and refuses a challenge certificate
// whose subject alternative names hold more than the identifier.
func TestTLSALPN01Strict(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client(newKey(t))
	e.register(c)

	e.mu.Lock()
	e.aRecords["two.signet.test"] = []net.IP{net.IPv4(127, 0, 0, 2), net.IPv4(127, 0, 0, 1)}
	e.mu.Unlock()
	o, err := c.AuthorizeOrder(ctx, []xacme.AuthzID{{Type: "dns", Value: "two.signet.test"}})
	if err != nil {
		t.Fatal(err)
	}
	if az := e.solve(c, o.AuthzURLs[0], "tls-alpn-01"); az.Status != xacme.StatusValid {
		t.Fatalf("with the second address answering: %s", az.Status)
	}

	name := "extra.signet.test"
	o, ch := e.challenge(t, c, name, "tls-alpn-01")
	ka, _ := c.HTTP01ChallengeResponse(ch.Token) // the key authorization
	sum := sha256.Sum256([]byte(ka))
	ext, _ := asn1.Marshal(sum[:])
	key := newKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), DNSNames: []string{name}, EmailAddresses: []string{"extra@example.org"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 31}, Critical: true, Value: ext}}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	e.alpn[name] = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	e.mu.Unlock()
	if _, err := c.Accept(ctx, ch); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := c.WaitAuthorization(wctx, o.AuthzURLs[0]); err == nil {
		t.Fatal("a tls-alpn-01 certificate with an email address beside the name was accepted")
	}
}
