package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"signet/internal/ca"
	"signet/internal/kms"
	"signet/internal/policy"
	"signet/internal/profile"
	"signet/internal/server"
	"signet/internal/store"
)

// TestAuthoritiesShowACME: GET /api/v1/authorities says which authorities
// serve ACME and which need an external account binding, as
// `signet authority list` does.
func TestAuthoritiesShowACME(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, kms.ECDSAP256, "file:root.key", "file:web.key", "file:vpn.key")
	c, st := f.ca, f.store
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

// TestAuthoritiesAnswerIsStatus: every authority in GET /api/v1/authorities
// carries what GET /api/v1/status (and signet status) says of it: state,
// key location, CA certificate expiry, certificates issued and revoked.
func TestAuthoritiesAnswerIsStatus(t *testing.T) {
	f := newWebFixture(t, "sqlite")
	ts := httptest.NewServer(server.New(server.Options{CA: f.ca, Store: f.store, AdminToken: []byte("secret")}).Handler())
	defer ts.Close()
	for _, name := range []string{"a.example.org", "b.example.org"} {
		if a := call(t, ts, "POST", "/api/v1/authorities/web/certificates", "secret", "application/pkcs10", csrFor(t, name)); a.status != http.StatusCreated {
			t.Fatalf("issue %s: %+v", name, a)
		}
	}
	type entry struct {
		Name     string  `json:"name"`
		State    string  `json:"state"`
		Location any     `json:"key_location"`
		Key      any     `json:"key"`
		NotAfter *string `json:"not_after"`
		Issued   int     `json:"issued"`
		Revoked  int     `json:"revoked"`
	}
	var auths []entry
	var status struct{ Authorities []entry }
	for path, out := range map[string]any{"/api/v1/authorities": &auths, "/api/v1/status": &status} {
		a := call(t, ts, "GET", path, "secret", "", "")
		if err := json.Unmarshal(a.body, out); a.status != http.StatusOK || err != nil {
			t.Fatalf("GET %s: %d %s, %v", path, a.status, a.body, err)
		}
	}
	if len(auths) != 2 || len(status.Authorities) != 2 {
		t.Fatalf("authorities %+v, status %+v", auths, status)
	}
	for i, a := range auths {
		s := status.Authorities[i]
		if a.Name != s.Name || a.State != s.State || fmt.Sprint(a.Location) != fmt.Sprint(s.Key) || a.NotAfter == nil || s.NotAfter == nil ||
			*a.NotAfter != *s.NotAfter || a.Issued != s.Issued || a.Revoked != s.Revoked {
			t.Errorf("authorities says %+v (key_location %s), status says %+v (key %s)", a, a.Location, s, s.Key)
		}
	}
	if auths[1].Name != "web" || auths[1].Issued != 2 || auths[1].State != "unlocked" {
		t.Errorf("web: %+v, want 2 issued, unlocked", auths[1])
	}
}
