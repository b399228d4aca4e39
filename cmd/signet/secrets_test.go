package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeShortAdminToken: a home made before admin tokens had a minimum
// length keeps serving with its short token, and serve says to replace it.
func TestServeShortAdminToken(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home")
	if code := run(context.Background(), []string{"init", "--home", dir}, nil, io.Discard, io.Discard); code != 0 {
		t.Fatalf("init exited %d", code)
	}
	const short = "abc"
	if err := os.WriteFile(filepath.Join(dir, "admin-token"), []byte(short+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr, client, stdout, stderr := startServe(t, dir)
	if !strings.Contains(stderr.String(), "admin token is too short") || !strings.Contains(stderr.String(), "has 3 characters; a new one needs at least 32") {
		t.Errorf("serve did not warn about the short admin token:\n%s", stderr.String())
	}
	if strings.Contains(stderr.String(), short+"\n") || strings.Contains(stdout.String(), "abc\n") {
		t.Errorf("serve printed the admin token")
	}
	req, _ := http.NewRequest("POST", "https://"+addr+"/api/v1/authorities/default/certificates", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+short)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized {
		t.Errorf("the short admin token of an older home was refused")
	}
}
