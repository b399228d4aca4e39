package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"signet/internal/ca"
	"signet/internal/kms"
	"signet/internal/policy"
	"signet/internal/profile"
	"signet/internal/server"
	"signet/internal/store"
)

// TestConsoleSignInClientCertificate: on a real serve listener with an
// admin authority, a client certificate of that authority signs in to the
// console without a token: as the built-in admin when its CN names no
// operator, as that operator with its role when it does. A revoked one,
// and one of another authority, are refused.
func TestConsoleSignInClientCertificate(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, kms.ECDSAP256, "file:root.key", "file:web.key", "file:admins.key", "file:others.key")
	root, err := f.ca.CreateRoot(ctx, ca.RootSpec{CommonName: "test root", KeyURI: "file:root.key"})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []ca.AuthoritySpec{
		{Name: "web", Purpose: profile.TLSServer, KeyURI: "file:web.key", Policy: policy.Policy{IP: []string{"127.0.0.1"}}},
		{Name: "admins", Purpose: profile.TLSClient, KeyURI: "file:admins.key", Policy: policy.Policy{Email: []string{"example.org"}}},
		{Name: "others", Purpose: profile.TLSClient, KeyURI: "file:others.key", Policy: policy.Policy{Email: []string{"example.org"}}},
	} {
		if _, err := f.ca.CreateAuthority(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	srv := server.New(server.Options{CA: f.ca, Store: f.store, AdminToken: []byte("secret"), Authority: "web",
		Names: []string{"127.0.0.1"}, AdminAuthority: "admins", Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	addr := serveTLS(t, srv)
	roots := x509.NewCertPool()
	rootCert, _ := x509.ParseCertificate(root.CertDER)
	roots.AddCert(rootCert)

	// clientCert is a client certificate of authority for cn.
	clientCert := func(authority, cn string) (tls.Certificate, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		iss, err := f.ca.Issue(ctx, ca.Request{Authority: authority, PublicKey: key.Public(), CommonName: cn,
			EmailAddresses: []string{cn + "@example.org"}, Actor: "test"})
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{iss.DER}, PrivateKey: key}, iss.Serial
	}
	// browserWith is a fresh browser presenting cert, whichever issuers
	// the server says it accepts.
	browserWith := func(cert tls.Certificate) *browser {
		jar, _ := cookiejar.New(nil)
		present := func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
		c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, GetClientCertificate: present}}}
		return &browser{t: t, c: c, base: "https://" + addr}
	}
	signInWithCert := func(b *browser) (*http.Response, string) {
		return b.post("/ui/signin", url.Values{"csrf": {b.csrf("/ui/signin")}})
	}

	// No operator of that name: the built-in admin.
	adaCert, adaSerial := clientCert("admins", "ada")
	ada := browserWith(adaCert)
	if _, body := ada.get("/ui/signin"); !strings.Contains(body, "certificate") {
		t.Errorf("the sign-in page does not offer the client certificate:\n%s", body)
	}
	if resp, body := signInWithCert(ada); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/" {
		t.Fatalf("sign-in with an admin certificate: %d\n%s", resp.StatusCode, body)
	}
	if resp, body := ada.get("/ui/operators"); resp.StatusCode != 200 || !strings.Contains(body, "client-cert:ada · admin") {
		t.Errorf("the admin certificate's session: %d; want an admin named client-cert:ada\n%s", resp.StatusCode, body)
	}

	// A CN naming an operator: that operator, with its role.
	op, _, ev, err := store.NewOperator("otto", store.RoleOperator, "cli")
	if err == nil {
		err = f.store.AddOperator(ctx, op, ev)
	}
	if err != nil {
		t.Fatal(err)
	}
	ottoCert, _ := clientCert("admins", "otto")
	otto := browserWith(ottoCert)
	if resp, body := signInWithCert(otto); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in with otto's certificate: %d\n%s", resp.StatusCode, body)
	}
	if resp, body := otto.get("/ui/"); resp.StatusCode != 200 || !strings.Contains(body, "otto · operator") || strings.Contains(body, "/ui/operators") {
		t.Errorf("otto's certificate's session: %d; want otto, an operator, without the operators page\n%s", resp.StatusCode, body)
	}
	if resp, _ := otto.get("/ui/operators"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("otto's certificate on the operators page: %d; want 403, an operator's role", resp.StatusCode)
	}
	events, _ := f.store.AuditEvents(ctx, store.EventFilter{Kind: "console.signin"})
	if len(events) != 2 || events[0].Actor != "ui:client-cert:ada" || events[1].Actor != "ui:otto" || !strings.Contains(string(events[1].Data), `"operator"`) {
		t.Errorf("sign-in events: %+v; want ui:client-cert:ada then ui:otto as an operator", events)
	}

	// Refused: a certificate of another authority, a revoked one.
	malloryCert, _ := clientCert("others", "ada")
	mallory := browserWith(malloryCert)
	if resp, body := signInWithCert(mallory); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "not a valid client certificate of admin authority") {
		t.Errorf("sign-in with another authority's certificate: %d; want 401\n%s", resp.StatusCode, body)
	}
	if _, err := f.ca.Revoke(ctx, adaSerial, 1, "test"); err != nil {
		t.Fatal(err)
	}
	if resp, body := signInWithCert(browserWith(adaCert)); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("sign-in with a revoked admin certificate: %d; want 401\n%s", resp.StatusCode, body)
	}
	// The session ada signed in with before the revocation ends with it;
	// otto's, whose certificate stands, goes on.
	if resp, body := ada.get("/ui/operators"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/ui/signin" {
		t.Errorf("the session of a revoked admin certificate: %d; want 303 to /ui/signin\n%s", resp.StatusCode, body)
	}
	if resp, body := otto.get("/ui/"); resp.StatusCode != 200 {
		t.Errorf("otto's session after another certificate's revocation: %d; want 200\n%s", resp.StatusCode, body)
	}
}
