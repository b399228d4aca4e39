package server_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"signet/internal/ca"
	"signet/internal/kms"
	"signet/internal/server"
	"signet/internal/store/sqlite"
)

// TestStrictBodies: every JSON request body is one value and nothing more,
// a revocation's included; and without an SSH CA the SSH routes do not exist.
func TestStrictBodies(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys := kms.NewManager(kms.Options{Dir: dir})
	defer keys.Close()
	srv := server.New(server.Options{CA: ca.New(ca.Options{Store: st, Keys: keys}), Store: st, AdminToken: []byte("secret")})
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	do := func(method, path, payload string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(payload))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	for _, payload := range []string{`{"reason":"superseded"}{}`, `{"reason":"superseded"}]`} {
		code, ct, out := do("POST", "/api/v1/certificates/0a/revoke", payload)
		if code != 400 || ct != "application/problem+json" || !strings.Contains(out, "more than one JSON value") {
			t.Errorf("revoke with %s: %d %s %s", payload, code, ct, out)
		}
	}
	if code, _, out := do("POST", "/api/v1/certificates/0a/revoke", `{"reason":"superseded"}`); code != 404 {
		t.Errorf("revoke of an unknown certificate: %d %s, want 404", code, out)
	}
	for _, r := range []struct{ method, path string }{
		{"POST", "/api/v1/authorities/users/ssh/certificates"},
		{"GET", "/api/v1/authorities/users/ssh/trust"},
		{"GET", "/api/v1/authorities/users/ssh/krl"},
	} {
		if code, ct, out := do(r.method, r.path, `{}`); code != 404 || ct != "application/problem+json" || !strings.Contains(out, "no such endpoint") {
			t.Errorf("%s %s without an SSH CA: %d %s %s", r.method, r.path, code, ct, out)
		}
	}
}
