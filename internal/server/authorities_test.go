package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"signet/internal/ca"
	"signet/internal/kms"
	"signet/internal/lint"
	"signet/internal/policy"
	"signet/internal/profile"
	"signet/internal/server"
	"signet/internal/store"
	"signet/internal/store/sqlite"
)

// TestAuthoritiesShowACME: GET /api/v1/authorities says which authorities
// serve ACME and which need an external account binding, as
// `signet authority list` does.
func TestAuthoritiesShowACME(t *testing.T) {
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
	for _, k := range []string{"file:root.key", "file:web.key", "file:vpn.key"} {
		if _, err := keys.Generate(ctx, k, kms.ECDSAP256); err != nil {
			t.Fatal(err)
		}
	}
	gate, err := lint.New()
	if err != nil {
		t.Fatal(err)
	}
	c := ca.New(ca.Options{Store: st, Keys: keys, Lint: gate})
	if _, err := c.CreateRoot(ctx, ca.RootSpec{CommonName: "test root", KeyURI: "file:root.key"}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []ca.AuthoritySpec{
		{Name: "web", Purpose: profile.TLSServer, KeyURI: "file:web.key", Policy: policy.Policy{DNS: []string{"example.org"}}, ACME: true},
		{Name: "vpn", Purpose: profile.VPN, KeyURI: "file:vpn.key", Policy: policy.Policy{DNS: []string{"example.org"}}},
	} {
		if _, err := c.CreateAuthority(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	on := true
	if _, _, err := c.ChangeAuthority(ctx, "web", store.AuthorityChange{RequireEAB: &on}, "test"); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(server.New(server.Options{CA: c, Store: st, AdminToken: []byte("secret")}).Handler())
	defer ts.Close()
	req, _ := http.NewRequest("GET", ts.URL+"/api/v1/authorities", nil)
	req.Header.Set("Authorization", "Bearer secret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []struct {
		Name       string
		ACME       *bool `json:"acme"`
		RequireEAB *bool `json:"require_eab"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	want := map[string][2]bool{"root": {false, false}, "web": {true, true}, "vpn": {false, false}}
	for _, a := range out {
		w, ok := want[a.Name]
		if !ok || a.ACME == nil || a.RequireEAB == nil || *a.ACME != w[0] || *a.RequireEAB != w[1] {
			t.Errorf("authority %s: acme %v require_eab %v, want %v", a.Name, a.ACME, a.RequireEAB, w)
		}
		delete(want, a.Name)
	}
	if len(want) > 0 {
		t.Errorf("authorities missing from the answer: %v", want)
	}
}
