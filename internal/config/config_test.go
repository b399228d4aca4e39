package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"signet/internal/errs"
)

// TestBaseURL: base_url takes the same rule as an authority's base URL
// (profile.CheckBaseURL): certificates name URLs under it, so a query,
// fragment or user information would end up inside them.
func TestBaseURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"", true},
		{"http://crl.example", true},
		{"https://pki.example/signet", true},
		{"http://crl.example/", false},
		{"ftp://crl.example", false},
		{"http://crl.example?x=1", false},
		{"http://crl.example/pki?x=1", false},
		{"http://crl.example#top", false},
		{"http://user@crl.example", false},
	} {
		c := Default()
		c.BaseURL = tc.url
		err := c.Validate()
		if tc.ok && err != nil {
			t.Errorf("%q: %v", tc.url, err)
		}
		if !tc.ok && (errs.KindOf(err) != errs.Malformed || !strings.Contains(err.Error(), "base_url")) {
			t.Errorf("%q: got %v, want it refused", tc.url, err)
		}
	}
}

// TestAddTokens: tokens are appended to signet.toml as [tokens.LABEL]
// tables, the rest of the file (comments included) kept and its mode
// unchanged, replaced atomically (no temporary file left); a listed label
// is refused, and an empty [tokens] table marks a home as having one.
func TestAddTokens(t *testing.T) {
	home := t.TempDir()
	path := filepath.Join(home, FileName)
	old := "# the operator's own comment\nstore = 'signet.db'\nlisten = '127.0.0.1:8443'\n\n[server]\nauthority = 'default'\n"
	if err := os.WriteFile(path, []byte(old), 0o640); err != nil {
		t.Fatal(err)
	}
	if c, err := Load(home); err != nil || c.HasTokens {
		t.Fatalf("Load: %+v, %v; want no [tokens]", c, err)
	}
	// The marker alone, then again: nothing more.
	for range 2 {
		if err := AddTokens(home, nil, ""); err != nil {
			t.Fatal(err)
		}
	}
	c, err := Load(home)
	if err != nil || !c.HasTokens || len(c.Tokens) != 0 {
		t.Fatalf("Load after the marker: %+v, %v", c, err)
	}
	add := map[string]Token{"my ca": {Module: "/usr/lib/p11's.so", PIN: "env:PIN"}, "b": {Module: "/b.so", Serial: "42"}}
	if err := AddTokens(home, add, "Moved here."); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(raw), old) || strings.Count(string(raw), "[tokens]") != 1 || !strings.Contains(string(raw), "# Moved here.") {
		t.Errorf("signet.toml:\n%s", raw)
	}
	if c, err = Load(home); err != nil || c.Tokens["my ca"] != add["my ca"] || c.Tokens["b"] != add["b"] || c.Server.Authority != "default" {
		t.Errorf("Load: %+v, %v", c, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, %v; want 0640 kept", fi.Mode().Perm(), err)
	}
	if entries, _ := os.ReadDir(home); len(entries) != 1 {
		t.Errorf("home holds %v, want signet.toml only", entries)
	}
	before, _ := os.ReadFile(path)
	err = AddTokens(home, map[string]Token{"b": {Module: "/other.so"}}, "")
	if errs.KindOf(err) != errs.Conflict || !strings.Contains(err.Error(), `"b"`) {
		t.Errorf("adding a listed token: %v, want a conflict", err)
	}
	err = AddTokens(home, map[string]Token{"c": {PIN: "123456"}}, "")
	if errs.KindOf(err) != errs.Malformed || strings.Contains(err.Error(), "123456") {
		t.Errorf("adding a literal PIN: %v, want it refused without echo", err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Errorf("refused additions changed signet.toml:\n%s", after)
	}
}

// TestDefaultHasTokens: a new home's signet.toml has the [tokens] table.
func TestDefaultHasTokens(t *testing.T) {
	home := t.TempDir()
	if err := Write(home, Default()); err != nil {
		t.Fatal(err)
	}
	if c, err := Load(home); err != nil || !c.HasTokens {
		t.Fatalf("Load: %+v, %v; want [tokens]", c, err)
	}
}

// TestAuthzReuseWindow: [acme] authorization_reuse sets how long a valid
// ACME authorization is reused; absent it is 7 days, 0 turns reuse off,
// and a negative one is refused.
func TestAuthzReuseWindow(t *testing.T) {
	for _, tc := range []struct {
		acme string
		want time.Duration
		bad  bool
	}{
		{"", DefaultAuthzReuse, false},
		{"[acme]\nauthorization_reuse = '0'\n", 0, false},
		{"[acme]\nauthorization_reuse = '2d'\n", 48 * time.Hour, false},
		{"[acme]\nauthorization_reuse = '-1h'\n", 0, true},
	} {
		home := t.TempDir()
		if err := os.WriteFile(filepath.Join(home, FileName), []byte("store = 'signet.db'\nlisten = '127.0.0.1:8443'\n"+tc.acme+"[server]\nauthority = 'default'\n"), 0o640); err != nil {
			t.Fatal(err)
		}
		c, err := Load(home)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: loaded, want an error", tc.acme)
			}
			continue
		}
		if err != nil || c.ACME.AuthzReuseWindow() != tc.want {
			t.Errorf("%q: reuse %s, %v; want %s", tc.acme, c.ACME.AuthzReuseWindow(), err, tc.want)
		}
	}
}
