package wfe_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	xacme "golang.org/x/crypto/acme"

	"signet/internal/acme/wfe"
	"signet/internal/ca"
	"signet/internal/kms"
	"signet/internal/policy"
	"signet/internal/profile"
	"signet/internal/server"
	"signet/internal/store"
)

// get fetches url from server ts and returns the status and the body.
func get(t *testing.T, ts *httptest.Server, url string) (int, []byte) {
	t.Helper()
	resp, err := ts.Client().Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// eventually polls url until it answers status: a change made through the
// store, as the CLI or another node makes it, is seen within the front
// end's cache lifetime (1 s). Bounded: 10 s.
func eventually(t *testing.T, ts *httptest.Server, url string, status int) []byte {
	t.Helper()
	for range 200 {
		got, body := get(t, ts, url)
		if got == status {
			return body
		}
		time.Sleep(50 * time.Millisecond)
	}
	got, body := get(t, ts, url)
	t.Fatalf("GET %s: %d %s; want %d", url, got, body, status)
	return nil
}

func setACME(t *testing.T, e *env, name string, on bool) {
	t.Helper()
	if _, _, err := e.h.CA.ChangeAuthority(context.Background(), name, store.AuthorityChange{ACME: &on}, "test"); err != nil {
		t.Fatal(err)
	}
}

// TestACMESetting: an authority whose ACME setting is off answers 404
// problem documents for every ACME resource, to new and existing accounts;
// turned on again, it serves again. Neither needs a restart.
func TestACMESetting(t *testing.T) {
	e := newEnv(t)
	c := e.client(nil)
	e.register(c)
	setACME(t, e, "default", false)
	body := eventually(t, e.ts, e.dirURL, http.StatusNotFound)
	if !strings.Contains(string(body), `authority \"default\" does not serve ACME`) {
		t.Errorf("directory of an authority without ACME: %s", body)
	}
	base := strings.TrimSuffix(e.dirURL, "directory")
	for _, path := range []string{"new-nonce", "renewal-info/AAAA.AAAA"} {
		if got, body := get(t, e.ts, base+path); got != http.StatusNotFound || !strings.Contains(string(body), "does not serve ACME") {
			t.Errorf("GET %s: %d %s; want 404", path, got, body)
		}
	}
	// A nonce from another authority of the same server, so that only the
	// authority decides the answer.
	_, _, p := e.post(base+"new-account", signJWS(t, newKey(t), "", base+"new-account", e.nonce(), []byte(`{"termsOfServiceAgreed":true}`), nil))
	if p == nil || p.Status != http.StatusNotFound {
		t.Errorf("new-account at an authority without ACME: %+v, want 404", p)
	}
	_, err := c.AuthorizeOrder(context.Background(), xacme.DomainIDs("off.example.org"))
	if ae, ok := err.(*xacme.Error); !ok || ae.StatusCode != http.StatusNotFound {
		t.Errorf("new-order of an existing account at an authority without ACME: %v, want 404", err)
	}
	setACME(t, e, "default", true)
	eventually(t, e.ts, e.dirURL, http.StatusOK)
	e.readyOrder(c, "on.example.org")
}

// TestAdminAuthorityNeverServed: the front end of a server whose admin
// authority has ACME on does not serve ACME for it, says so in its log
// and in /health, and goes on serving the other authorities.
func TestAdminAuthorityNeverServed(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	uri, err := e.h.GenerateKeyBesideRoot(ctx, "admins", kms.KeyType("ecdsa-p256"), "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.h.CA.CreateAuthority(ctx, ca.AuthoritySpec{Name: "admins", Purpose: profile.TLSClient, KeyURI: uri,
		Policy: policy.Policy{DNS: []string{"*"}}, Actor: "test", ACME: true}); err != nil {
		t.Fatal(err)
	}
	// A node not told it is the admin authority serves it: the setting is on.
	admins := e.ts.URL + "/acme/admins/directory"
	if got, body := get(t, e.ts, admins); got != http.StatusOK {
		t.Fatalf("directory of a tls-client authority with ACME on: %d %s", got, body)
	}

	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	w, err := wfe.New(ctx, wfe.Options{CA: e.h.CA, Store: e.h.Store, Log: log, AdminAuthority: "admins"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	if !strings.Contains(logs.String(), `authority \"admins\" has ACME on but is the admin authority`) {
		t.Errorf("no warning in the log at start: %s", logs.String())
	}
	ts := httptest.NewTLSServer(server.New(server.Options{CA: e.h.CA, Store: e.h.Store, ACME: w, Warnings: w.Warnings, Authority: "default", Log: log}).Handler())
	t.Cleanup(ts.Close)
	admins = ts.URL + "/acme/admins/directory"
	if got, body := get(t, ts, admins); got != http.StatusNotFound || !strings.Contains(string(body), "does not serve ACME") {
		t.Errorf("directory of the admin authority: %d %s; want 404", got, body)
	}
	if got, body := get(t, ts, ts.URL+"/acme/default/directory"); got != http.StatusOK {
		t.Errorf("directory of another authority: %d %s", got, body)
	}
	var health struct {
		Status   string
		Warnings []string
	}
	_, body := get(t, ts, ts.URL+"/health")
	if json.Unmarshal(body, &health); health.Status != "ok" || len(health.Warnings) != 1 || !strings.Contains(health.Warnings[0], `"admins"`) {
		t.Errorf("/health: %s; want ok with a warning about admins", body)
	}
	// Turned off, the warning goes; the authority is still not served.
	setACME(t, e, "admins", false)
	for range 200 {
		if _, body = get(t, ts, ts.URL+"/health"); !strings.Contains(string(body), "warnings") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Contains(string(body), "warnings") {
		t.Errorf("/health once the admin authority's ACME is off: %s", body)
	}
	if got, _ := get(t, ts, admins); got != http.StatusNotFound {
		t.Errorf("directory of the admin authority with ACME off: %d", got)
	}
}

// TestCommonNameFromIdentifiers: a certificate's CN is the order's first
// DNS identifier of at most 64 octets, as validated; the CSR's CN, which
// need only match an identifier once folded, never reaches it. Server
// certificates refused such a CN; client certificates carried it.
func TestCommonNameFromIdentifiers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	uri, err := e.h.GenerateKeyBesideRoot(ctx, "clients", kms.KeyType("ecdsa-p256"), "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.h.CA.CreateAuthority(ctx, ca.AuthoritySpec{Name: "clients", Purpose: profile.TLSClient, KeyURI: uri,
		Policy: policy.Policy{DNS: []string{"*"}}, Actor: "test", ACME: true}); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("a", 60) + ".corp.test" // 70 octets: no CN can hold it
	for _, authority := range []string{"default", "clients"} {
		c := e.client(nil)
		c.DirectoryURL = e.ts.URL + "/acme/" + authority + "/directory"
		e.register(c)
		for _, tc := range []struct {
			name   string
			ids    []string
			csrCN  string
			sans   []string
			wantCN string
		}{
			{"upper case and a trailing dot", []string{"pc1.corp.test"}, "PC1.CORP.TEST.", []string{"pc1.corp.test"}, "pc1.corp.test"},
			{"Kelvin sign", []string{"korp.test"}, "\u212aorp.test", []string{"korp.test"}, "korp.test"},
			{"Kelvin sign, CN only", []string{"kelvin.test"}, "\u212aelvin.test", nil, "kelvin.test"},
			{"first identifier that fits", []string{long, "short.corp.test"}, "", []string{long, "short.corp.test"}, "short.corp.test"},
			{"no identifier fits", []string{long}, "", []string{long}, ""},
		} {
			t.Run(authority+"/"+tc.name, func(t *testing.T) {
				o := e.readyOrder(c, tc.ids...)
				der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: tc.csrCN}, DNSNames: tc.sans}, newKey(t))
				if err != nil {
					t.Fatal(err)
				}
				chain, _, err := c.CreateOrderCert(ctx, o.FinalizeURL, der, true)
				if err != nil {
					t.Fatalf("finalize: %v", err)
				}
				leaf, err := x509.ParseCertificate(chain[0])
				if err != nil {
					t.Fatal(err)
				}
				if leaf.Subject.CommonName != tc.wantCN || leaf.Subject.String() != cnSubject(tc.wantCN) || !slices.Equal(leaf.DNSNames, tc.ids) {
					t.Errorf("subject %q, names %v; want CN %q, names %v", leaf.Subject, leaf.DNSNames, tc.wantCN, tc.ids)
				}
			})
		}
	}
}

func cnSubject(cn string) string {
	if cn == "" {
		return ""
	}
	return "CN=" + cn
}
