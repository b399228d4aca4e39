package server_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"signet/internal/audit"
	"signet/internal/ca"
	"signet/internal/kms"
	"signet/internal/policy"
	"signet/internal/profile"
	"signet/internal/server"
	"signet/internal/sshca"
	"signet/internal/store"
	"signet/internal/store/sqlite"
)

// TestSSHAPI drives the SSH endpoints over HTTP: issuance through the one
// path (policy, limits, store, audit), the trust lines and the KRL.
func TestSSHAPI(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass")
	if err := os.WriteFile(pass, []byte("a long passphrase"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys := kms.NewManager(kms.Options{Dir: dir, Passphrase: kms.Source("file:" + pass)})
	defer keys.Close()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := keys.Generate(ctx, "file:users.key", kms.Ed25519); err != nil {
		t.Fatal(err)
	}
	c := ca.New(ca.Options{Store: st, Keys: keys})
	if _, err := c.CreateAuthority(ctx, ca.AuthoritySpec{Name: "users", Purpose: profile.SSHUser, KeyURI: "file:users.key",
		Policy: policy.Policy{Principals: []string{"alice"}}, DefaultValidity: time.Hour, MaxValidity: 2 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	sc := sshca.New(sshca.Options{Store: st, Keys: keys})
	srv := server.New(server.Options{CA: c, SSH: sc, Store: st, AdminToken: []byte("secret")})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	spub, _ := ssh.NewPublicKey(pub)
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(spub)))
	body := func(v map[string]any) string { b, _ := json.Marshal(v); return string(b) }
	post := func(token, accept, payload string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", ts.URL+"/api/v1/authorities/users/ssh/certificates", strings.NewReader(payload))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	resp, out := post("secret", "", body(map[string]any{"public_key": line, "principals": []string{"alice"}, "type": "user",
		"validity": "30m", "key_id": "alice@api", "force_command": "/bin/true", "no_pty": true}))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("sign: %d %s", resp.StatusCode, out)
	}
	cert, err := sshca.ParseCertificate([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if cert.KeyId != "alice@api" || cert.ValidPrincipals[0] != "alice" || cert.CriticalOptions["force-command"] != "/bin/true" ||
		cert.ValidBefore-cert.ValidAfter != 31*60 || !strings.Contains(string(cert.Key.Marshal()), string(spub.Marshal())) {
		t.Errorf("certificate %+v", cert)
	}
	if _, ok := cert.Extensions["permit-pty"]; ok {
		t.Error("no_pty ignored")
	}
	rec, err := st.SSHCertificate(ctx, cert.Serial)
	if err != nil || rec.Requester != "api:admin-token" || rec.KeyID != "alice@api" {
		t.Errorf("recorded %+v, %v", rec, err)
	}
	if rep, err := audit.Verify(ctx, st); err != nil || rep.Certificates != 1 {
		t.Errorf("audit: %+v, %v", rep, err)
	}

	resp, out = post("secret", "application/json", body(map[string]any{"public_key": line, "principals": []string{"alice"}}))
	var js struct {
		Serial      uint64 `json:"serial"`
		Certificate string `json:"certificate"`
	}
	if resp.StatusCode != http.StatusCreated || json.Unmarshal([]byte(out), &js) != nil || js.Serial == 0 || !strings.HasPrefix(js.Certificate, "ssh-ed25519-cert-v01@openssh.com ") {
		t.Errorf("JSON answer: %d %s", resp.StatusCode, out)
	}

	for _, tc := range []struct {
		name, token, payload string
		status               int
		detail               string
	}{
		{"no token", "", body(map[string]any{"public_key": line, "principals": []string{"alice"}}), 401, "Bearer"},
		{"outside policy", "secret", body(map[string]any{"public_key": line, "principals": []string{"mallory"}}), 403, "mallory"},
		{"too long", "secret", body(map[string]any{"public_key": line, "principals": []string{"alice"}, "validity": "3h"}), 403, "maximum"},
		{"host from user CA", "secret", body(map[string]any{"public_key": line, "principals": []string{"alice"}, "type": "host"}), 403, "user certificates"},
		{"unknown field", "secret", `{"public_key": "x", "principal": ["alice"]}`, 400, "unknown field"},
		{"bad key", "secret", body(map[string]any{"public_key": "ssh-ed25519 AAAA", "principals": []string{"alice"}}), 400, "public key"},
		{"no principals", "secret", body(map[string]any{"public_key": line}), 400, "principal"},
		{"source address with a zone", "secret", body(map[string]any{"public_key": line, "principals": []string{"alice"}, "source_address": []string{"fe80::1%eth0"}}), 400, "IPv6 zone"},
		{"source address with host bits", "secret", body(map[string]any{"public_key": line, "principals": []string{"alice"}, "source_address": []string{"10.1.2.3/8"}}), 400, "write 10.0.0.0/8"},
		{"validity that wrapped around", "secret", body(map[string]any{"public_key": line, "principals": []string{"alice"}, "validity": "213504d"}), 400, "longer than 100 years"},
	} {
		resp, out := post(tc.token, "", tc.payload)
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(out, tc.detail) {
			t.Errorf("%s: %d %s %s", tc.name, resp.StatusCode, resp.Header.Get("Content-Type"), out)
		}
	}
	if list, _ := st.SSHCertificates(ctx, store.SSHFilter{}); len(list) != 2 {
		t.Errorf("%d certificates recorded, want 2 (refusals record nothing)", len(list))
	}

	// After its key ID is revoked, the KRL refuses every certificate with
	// it: none is issued, and the answer says to choose another.
	if _, err := sc.RevokeKeyID(ctx, "users", "alice@api", "test"); err != nil {
		t.Fatal(err)
	}
	resp, out = post("secret", "", body(map[string]any{"public_key": line, "principals": []string{"alice"}, "key_id": "alice@api"}))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(out, `key ID \"alice@api\" of authority \"users\" is revoked`) ||
		!strings.Contains(out, "choose a new key ID") {
		t.Errorf("key ID revoked: %d %s", resp.StatusCode, out)
	}
	if list, _ := st.SSHCertificates(ctx, store.SSHFilter{KeyID: "alice@api", Status: store.Valid}); len(list) != 0 {
		t.Errorf("valid certificates with a revoked key ID: %+v", list)
	}

	get := func(path string) (int, string) {
		resp, err := http.Get(ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, out := get("/api/v1/authorities/users/ssh/trust"); code != 200 || !strings.HasPrefix(out, "ssh-ed25519 AAAA") || !strings.HasSuffix(out, " signet:users\n") {
		t.Errorf("trust: %d %q", code, out)
	}
	if code, out := get("/api/v1/authorities/users/ssh/krl"); code != 200 || !strings.HasPrefix(out, "SSHKRL\n\x00") {
		t.Errorf("krl: %d %q", code, out)
	}
	if code, _ := get("/api/v1/authorities/nobody/ssh/krl"); code != 404 {
		t.Errorf("krl of an unknown authority: %d", code)
	}
}

// TestSSHTrustPattern: the known_hosts pattern of the public trust route
// is an OpenSSH host pattern list or a 400 problem; NUL, vertical tab, #
// and the like never reach the lines hosts install.
func TestSSHTrustPattern(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t.Setenv("TEST_PASSPHRASE", "ssh trust pattern test")
	keys := kms.NewManager(kms.Options{Dir: dir, Passphrase: kms.Source("env:TEST_PASSPHRASE")})
	defer keys.Close()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := keys.Generate(ctx, "file:hosts.key", kms.Ed25519); err != nil {
		t.Fatal(err)
	}
	c := ca.New(ca.Options{Store: st, Keys: keys})
	if _, err := c.CreateAuthority(ctx, ca.AuthoritySpec{Name: "hosts", Purpose: profile.SSHHost, KeyURI: "file:hosts.key",
		Policy: policy.Policy{Principals: []string{"web.example.org"}}, DefaultValidity: time.Hour, MaxValidity: 2 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	srv := server.New(server.Options{CA: c, SSH: sshca.New(sshca.Options{Store: st, Keys: keys}), Store: st, AdminToken: []byte("secret")})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	get := func(pattern string) (int, string, string) {
		resp, err := http.Get(ts.URL + "/api/v1/authorities/hosts/ssh/trust?pattern=" + url.QueryEscape(pattern))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	for _, pattern := range []string{"*.example.org,!old.example.org", "[web.example.org]:2222", "10.0.0.?,2001:db8::1", "[::1]:22"} {
		if code, _, out := get(pattern); code != 200 || !strings.HasPrefix(out, "@cert-authority "+pattern+" ssh-ed25519 AAAA") || strings.Count(out, "\n") != 1 {
			t.Errorf("pattern %q: %d %q", pattern, code, out)
		}
	}
	for _, pattern := range []string{"web\x00.example.org", "a\vb", "web.example.org#comment", "a b", "\"a\"", "a,,b", "a,", "!",
		"[web.example.org]", "[web.example.org]:0", "[web.example.org]:65536", "|1|c2FsdA==|aGFzaA==", "a/b", "user@host"} {
		code, ct, out := get(pattern)
		if code != 400 || ct != "application/problem+json" || !strings.Contains(out, "urn:signet:error:malformed") || !strings.Contains(out, "known_hosts pattern") {
			t.Errorf("pattern %q: %d %s %q, want a 400 problem", pattern, code, ct, out)
		}
	}
}
