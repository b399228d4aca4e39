package server_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"signet/internal/audit"
	"signet/internal/ca"
	"signet/internal/config"
	"signet/internal/kms"
	"signet/internal/limits"
	"signet/internal/policy"
	"signet/internal/profile"
	"signet/internal/server"
	"signet/internal/sshca"
	"signet/internal/sshclient"
	"signet/internal/store"
)

// renewalEnv is a server with a host authority "hosts" (default validity
// 1h), a user authority "users", and the means to issue and sign.
type renewalEnv struct {
	t   *testing.T
	f   fixture
	ssh *sshca.CA
	url string
}

func newRenewalEnv(t *testing.T, lim *limits.Limits) *renewalEnv {
	t.Helper()
	ctx := context.Background()
	f := newFixture(t, kms.Ed25519, "file:hosts.key", "file:hosts-2.key", "file:users.key")
	for _, spec := range []ca.AuthoritySpec{
		{Name: "hosts", Purpose: profile.SSHHost, KeyURI: "file:hosts.key", Policy: policy.Policy{Principals: []string{"web.example.org", "db.example.org"}},
			DefaultValidity: time.Hour, MaxValidity: 48 * time.Hour},
		{Name: "users", Purpose: profile.SSHUser, KeyURI: "file:users.key", Policy: policy.Policy{Principals: []string{"alice"}},
			DefaultValidity: time.Hour, MaxValidity: 2 * time.Hour},
	} {
		if _, err := f.ca.CreateAuthority(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	sc := sshca.New(sshca.Options{Store: f.store, Keys: f.keys})
	srv := server.New(server.Options{CA: f.ca, SSH: sc, Store: f.store, AdminToken: []byte("secret"), Limits: lim})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &renewalEnv{t: t, f: f, ssh: sc, url: ts.URL}
}

// hostKey is a fresh Ed25519 host key.
func hostKey(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	s, err := ssh.NewSignerFromSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// issue signs a certificate for key as an administrator would (c: nil for
// the env's CA, or one with another clock).
func (e *renewalEnv) issue(c *sshca.CA, authority string, typ store.SSHCertType, key ssh.Signer, validity time.Duration, principals ...string) *ssh.Certificate {
	e.t.Helper()
	if c == nil {
		c = e.ssh
	}
	iss, err := c.Issue(context.Background(), sshca.Request{Authority: authority, PublicKey: key.PublicKey(), Type: typ,
		Principals: principals, Validity: validity, KeyID: "host:" + principals[0], Actor: "test"})
	if err != nil {
		e.t.Fatal(err)
	}
	return iss.Cert
}

func (e *renewalEnv) nonce() string {
	e.t.Helper()
	resp, err := http.Get(e.url + sshclient.Path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var n struct {
		Nonce string `json:"nonce"`
	}
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" || json.NewDecoder(resp.Body).Decode(&n) != nil || n.Nonce == "" {
		e.t.Fatalf("nonce: %d %s", resp.StatusCode, resp.Header)
	}
	return n.Nonce
}

// body is a renewal of cert signed by signer over nonce.
func (e *renewalEnv) body(cert *ssh.Certificate, signer ssh.Signer, nonce string) string {
	e.t.Helper()
	sig, err := signer.Sign(rand.Reader, sshca.RenewalMessage(nonce, cert))
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]string{"certificate": string(ssh.MarshalAuthorizedKey(cert)), "nonce": nonce,
		"signature": base64.StdEncoding.EncodeToString(ssh.Marshal(sig))})
	return string(b)
}

func (e *renewalEnv) post(body string) (int, string, string) {
	e.t.Helper()
	resp, err := http.Post(e.url+sshclient.Path, "application/json", strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func (e *renewalEnv) count() int {
	e.t.Helper()
	list, err := e.f.store.SSHCertificates(context.Background(), store.SSHFilter{})
	if err != nil {
		e.t.Fatal(err)
	}
	return len(list)
}

// TestSSHHostRenewal: a host renews its certificate with no admin token,
// through sshclient.RenewHost: the same key, principals and key ID, the
// authority's default validity, a new serial recorded and audited with the
// host as actor. A certificate signed by a CA key since rolled over (still
// trusted) renews too, and the renewed one renews again.
func TestSSHHostRenewal(t *testing.T) {
	ctx := context.Background()
	e := newRenewalEnv(t, nil)
	key := hostKey(t)
	old := e.issue(nil, "hosts", store.SSHHostCert, key, 30*time.Minute, "web.example.org", "db.example.org")

	renewed, err := sshclient.RenewHost(ctx, e.url, nil, key, old)
	if err != nil {
		t.Fatal(err)
	}
	if renewed.Serial == old.Serial || renewed.KeyId != old.KeyId || strings.Join(renewed.ValidPrincipals, ",") != "web.example.org,db.example.org" ||
		renewed.CertType != ssh.HostCert || string(renewed.Key.Marshal()) != string(key.PublicKey().Marshal()) ||
		renewed.ValidBefore-renewed.ValidAfter != uint64(time.Hour/time.Second+60) {
		t.Errorf("renewed %+v from %+v", renewed, old)
	}
	rec, err := e.f.store.SSHCertificate(ctx, renewed.Serial)
	if err != nil || rec.Status != store.Valid || rec.Requester != "ssh-host:"+itoa(old.Serial) || rec.Authority != "hosts" {
		t.Errorf("recorded %+v, %v", rec, err)
	}
	events, err := e.f.store.AuditEvents(ctx, store.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if last := events[len(events)-1]; last.Kind != audit.KindSSHCertificateIssue || last.Actor != "ssh-host:"+itoa(old.Serial) || last.Subject != store.SSHSubject(renewed.Serial) {
		t.Errorf("last audit event %+v", last)
	}
	if rep, err := audit.Verify(ctx, e.f.store); err != nil || rep.Certificates != 2 {
		t.Errorf("audit: %+v, %v", rep, err)
	}

	// A rollover: the new key signs, the old one stays trusted; the
	// certificate the old key signed still renews, now signed by the new.
	if _, err := e.ssh.AddKey(ctx, "hosts", "file:hosts-2.key", true, "test"); err != nil {
		t.Fatal(err)
	}
	again, err := sshclient.RenewHost(ctx, e.url, nil, key, renewed)
	if err != nil {
		t.Fatalf("renewal after a rollover: %v", err)
	}
	if string(again.SignatureKey.Marshal()) == string(renewed.SignatureKey.Marshal()) {
		t.Error("the renewal after a rollover is signed by the old CA key")
	}
	if _, err := sshclient.RenewHost(ctx, e.url, nil, key, again); err != nil {
		t.Errorf("a renewed certificate does not renew: %v", err)
	}

	// An RSA host key: the client signs with rsa-sha2-512.
	rsaPriv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, _ := ssh.NewSignerFromSigner(rsaPriv)
	rsaCert := e.issue(nil, "hosts", store.SSHHostCert, rsaKey, time.Hour, "db.example.org")
	if _, err := sshclient.RenewHost(ctx, e.url, nil, rsaKey, rsaCert); err != nil {
		t.Errorf("renewal with an RSA host key: %v", err)
	}

	// A second node sharing the store accepts the first one's nonce once:
	// the nonces' key is shared through the store.
	node2 := server.New(server.Options{CA: e.f.ca, SSH: sshca.New(sshca.Options{Store: e.f.store, Keys: e.f.keys}), Store: e.f.store})
	ts2 := httptest.NewServer(node2.Handler())
	defer ts2.Close()
	body := e.body(again, key, e.nonce())
	for i, want := range []int{http.StatusCreated, http.StatusUnauthorized} {
		resp, err := http.Post(ts2.URL+sshclient.Path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("use %d on the second node of the first node's nonce: %d, want %d", i+1, resp.StatusCode, want)
		}
	}
}

func itoa(n uint64) string { b, _ := json.Marshal(n); return string(b) }

// TestSSHHostRenewalRefusals: every refusal is a problem document, records
// nothing, and names the reason.
func TestSSHHostRenewalRefusals(t *testing.T) {
	ctx := context.Background()
	e := newRenewalEnv(t, nil)
	key, other := hostKey(t), hostKey(t)
	good := e.issue(nil, "hosts", store.SSHHostCert, key, time.Hour, "web.example.org")
	past := sshca.New(sshca.Options{Store: e.f.store, Keys: e.f.keys, Clock: func() time.Time { return time.Now().Add(-48 * time.Hour) }})
	expired := e.issue(past, "hosts", store.SSHHostCert, key, time.Hour, "web.example.org")
	revoked := e.issue(nil, "hosts", store.SSHHostCert, key, time.Hour, "db.example.org")
	if err := e.ssh.Revoke(ctx, "hosts", revoked.Serial, "test"); err != nil {
		t.Fatal(err)
	}
	user := e.issue(nil, "users", store.SSHUserCert, key, time.Hour, "alice")

	// Another CA's certificate: signed by a key that is no signet
	// authority's, with the serial, key and principals of the good one.
	_, foreignPriv, _ := ed25519.GenerateKey(rand.Reader)
	foreignCA, _ := ssh.NewSignerFromSigner(foreignPriv)
	foreign := &ssh.Certificate{Key: key.PublicKey(), Serial: good.Serial, CertType: ssh.HostCert, KeyId: good.KeyId,
		ValidPrincipals: []string{"web.example.org", "db.example.org"}, ValidAfter: good.ValidAfter, ValidBefore: good.ValidBefore}
	if err := foreign.SignCert(rand.Reader, foreignCA); err != nil {
		t.Fatal(err)
	}
	unknown := *foreign
	unknown.Serial = 1<<62 + 7
	if err := unknown.SignCert(rand.Reader, foreignCA); err != nil {
		t.Fatal(err)
	}
	// The good certificate with one more principal: its CA signature no
	// longer matches, and it is not what signet recorded.
	widened := *good
	widened.ValidPrincipals = []string{"web.example.org", "db.example.org"}

	// An RSA host key signing with ssh-rsa, SHA-1.
	rsaPriv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, _ := ssh.NewSignerFromSigner(rsaPriv)
	rsaCert := e.issue(nil, "hosts", store.SSHHostCert, rsaKey, time.Hour, "web.example.org")
	sha1Key, err := ssh.NewSignerWithAlgorithms(rsaKey.(ssh.AlgorithmSigner), []string{ssh.KeyAlgoRSA})
	if err != nil {
		t.Fatal(err)
	}

	used := e.nonce()
	if code, _, out := e.post(e.body(good, key, used)); code != http.StatusCreated {
		t.Fatalf("renewal: %d %s", code, out)
	}
	before := e.count()

	goodLine := string(ssh.MarshalAuthorizedKey(good))
	for _, tc := range []struct {
		name   string
		body   string
		status int
		kind   string
		detail string
	}{
		{"expired", e.body(expired, key, e.nonce()), 403, "rejected", "cannot renew itself"},
		{"revoked", e.body(revoked, key, e.nonce()), 403, "rejected", "is revoked"},
		{"another CA's certificate with a recorded serial", e.body(foreign, key, e.nonce()), 401, "unauthorized", "not the one this signet issued"},
		{"another CA's certificate", e.body(&unknown, key, e.nonce()), 401, "unauthorized", "not issued by this signet"},
		{"user certificate", e.body(user, key, e.nonce()), 403, "rejected", "only host certificates renew themselves"},
		{"signed by another key", e.body(good, other, e.nonce()), 401, "unauthorized", "not signed by its host key"},
		{"ssh-rsa signature", e.body(rsaCert, sha1Key, e.nonce()), 403, "rejected", "SHA-1"},
		{"replayed nonce", e.body(good, key, used), 401, "unauthorized", "used already"},
		{"nonce never issued", e.body(good, key, strings.Repeat("A", len(used))), 401, "unauthorized", "unknown, expired or used"},
		{"principals widened", e.body(&widened, key, e.nonce()), 401, "unauthorized", "not the one this signet issued"},
		{"principals asked for", `{"certificate": ` + jsonString(goodLine) + `, "nonce": "n", "signature": "AAAA", "principals": ["db.example.org"]}`, 400, "malformed", "unknown field"},
		{"no signature", `{"certificate": ` + jsonString(goodLine) + `, "nonce": "n"}`, 400, "malformed", "required"},
		{"signature not base64", `{"certificate": ` + jsonString(goodLine) + `, "nonce": "n", "signature": "%%"}`, 400, "malformed", "not base64"},
		{"signature not a blob", `{"certificate": ` + jsonString(goodLine) + `, "nonce": "n", "signature": "AAAA"}`, 400, "malformed", "not an SSH signature"},
		{"plain key", `{"certificate": ` + jsonString(string(ssh.MarshalAuthorizedKey(key.PublicKey()))) + `, "nonce": "n", "signature": "AAAA"}`, 400, "malformed", "not a certificate"},
		{"too large", `{"certificate": "` + strings.Repeat("A", 40<<10) + `"}`, 400, "malformed", "larger than"},
	} {
		code, ct, out := e.post(tc.body)
		if code != tc.status || ct != "application/problem+json" || !strings.Contains(out, "urn:signet:error:"+tc.kind) || !strings.Contains(out, tc.detail) {
			t.Errorf("%s: %d %s %s", tc.name, code, ct, out)
		}
	}
	if n := e.count(); n != before {
		t.Errorf("%d certificates recorded after the refusals, want %d", n, before)
	}

	// A key ID revoked: the KRL refuses every certificate with it, and so
	// does renewal.
	fresh := e.issue(nil, "hosts", store.SSHHostCert, other, time.Hour, "db.example.org")
	if _, err := e.ssh.RevokeKeyID(ctx, "hosts", fresh.KeyId, "test"); err != nil {
		t.Fatal(err)
	}
	if code, _, out := e.post(e.body(fresh, other, e.nonce())); code != 403 || !strings.Contains(out, "is revoked") {
		t.Errorf("revoked key ID: %d %s", code, out)
	}
	// A CA key retired: hosts no longer trust what it signed.
	ca2 := e.issue(nil, "hosts", store.SSHHostCert, other, time.Hour, "web.example.org")
	if _, err := e.ssh.AddKey(ctx, "hosts", "file:hosts-2.key", true, "test"); err != nil {
		t.Fatal(err)
	}
	keys, _ := e.ssh.Keys(ctx, "hosts")
	if _, err := e.ssh.SetKeyState(ctx, "hosts", keys[0].Fingerprint, store.SSHKeyRetired, "test"); err != nil {
		t.Fatal(err)
	}
	if code, _, out := e.post(e.body(ca2, other, e.nonce())); code != 403 || !strings.Contains(out, "retired") {
		t.Errorf("retired CA key: %d %s", code, out)
	}
	if n := e.count(); n != before+2 {
		t.Errorf("%d certificates recorded, want %d", n, before+2)
	}
}

func jsonString(s string) string { b, _ := json.Marshal(s); return string(b) }

// TestSSHHostRenewalLimits: renewals per host key are limited, and failed
// proofs back off their source address like failed admin logins.
func TestSSHHostRenewalLimits(t *testing.T) {
	cfg := config.Limits{HostRenewalsPerKey: config.Rate{Count: 2, Per: time.Hour}, FailedAdminAuthPerIP: config.Rate{Count: 3, Per: time.Hour}}
	lim, err := limits.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newRenewalEnv(t, lim)
	key, other := hostKey(t), hostKey(t)
	cert := e.issue(nil, "hosts", store.SSHHostCert, key, time.Hour, "web.example.org")
	for i := range 2 {
		if code, _, out := e.post(e.body(cert, key, e.nonce())); code != 201 {
			t.Fatalf("renewal %d: %d %s", i, code, out)
		}
	}
	if code, _, out := e.post(e.body(cert, key, e.nonce())); code != 429 || !strings.Contains(out, "renewed its certificate too often") {
		t.Errorf("third renewal of one key: %d %s", code, out)
	}
	// Another host's key is counted apart.
	second := e.issue(nil, "hosts", store.SSHHostCert, other, time.Hour, "db.example.org")
	if code, _, out := e.post(e.body(second, other, e.nonce())); code != 201 {
		t.Errorf("another host: %d %s", code, out)
	}
	for range 3 {
		e.post(e.body(second, key, e.nonce())) // signed by the wrong key
	}
	if code, _, out := e.post(e.body(second, other, e.nonce())); code != 429 || !strings.Contains(out, "too many failed authentications") {
		t.Errorf("after failed proofs: %d %s", code, out)
	}
}
