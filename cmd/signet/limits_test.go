package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeLimits: serve applies the [limits] of signet.toml: here, after
// one failed authentication /api/v1 answers 429 with Retry-After, also
// for the right token, while /health stays open.
func TestServeLimits(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home")
	homeCLI(t, dir)("init")
	f, err := os.OpenFile(filepath.Join(dir, "signet.toml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("\n[limits]\nfailed_admin_auth_per_ip = \"1/1h\"\n")
	f.Close()
	raw, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(raw))
	addr, client, _, _ := startServe(t, dir)
	get := func(path, token string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", "https://"+addr+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := get("/api/v1/authorities", token); r.StatusCode != http.StatusOK {
		t.Fatalf("right token: %d", r.StatusCode)
	}
	if r := get("/api/v1/authorities", "guess"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong token: %d", r.StatusCode)
	}
	if r := get("/api/v1/authorities", token); r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("right token during the back-off: %d, Retry-After %q; want 429 with Retry-After", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if r := get("/health", ""); r.StatusCode != http.StatusOK {
		t.Fatalf("/health during the back-off: %d", r.StatusCode)
	}
}
