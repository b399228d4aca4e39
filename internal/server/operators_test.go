package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"signet/internal/audit"
	"signet/internal/server"
	"signet/internal/store"
)

// TestOperatorRoles, on SQLite and PostgreSQL: an operator's personal
// token authenticates with its role — a viewer reads but may not issue or
// revoke (403), an operator issues and its audit event names it — the
// admin token keeps working as the built-in admin, and a removed
// operator's token is refused at once (401).
func TestOperatorRoles(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			ctx := context.Background()
			f := newWebFixture(t, backend)
			ts := httptest.NewServer(server.New(server.Options{CA: f.ca, Store: f.store, AdminToken: []byte("secret")}).Handler())
			t.Cleanup(ts.Close)
			add := func(name, role string) string {
				token, sum, err := store.NewOperatorToken()
				if err != nil {
					t.Fatal(err)
				}
				if err := f.store.AddOperator(ctx, store.Operator{Name: name, Role: role, TokenHash: sum[:]}, audit.Event{Actor: "cli"}); err != nil {
					t.Fatal(err)
				}
				return token
			}
			viewer, oper := add("vera", store.RoleViewer), add("otto", store.RoleOperator)

			csr := csrFor(t, "www.example.org")
			issue := "/api/v1/authorities/web/certificates"

			if a := call(t, ts, "GET", "/api/v1/authorities", viewer, "", ""); a.status != http.StatusOK {
				t.Fatalf("viewer reads authorities: %+v", a)
			}
			for _, path := range []string{"/api/v1/status", "/api/v1/certificates?limit=5", "/api/v1/audit/events",
				"/api/v1/ssh/certificates", "/api/v1/ssh/keys", "/api/v1/acme/accounts"} {
				if a := call(t, ts, "GET", path, viewer, "", ""); a.status != http.StatusOK {
					t.Fatalf("viewer reads %s: %+v", path, a)
				}
			}
			for _, path := range []string{"/api/v1/lock", "/api/v1/unlock"} {
				if a := call(t, ts, "POST", path, viewer, "application/json", `{}`); a.status != http.StatusForbidden {
					t.Fatalf("viewer posts %s: %+v, want 403", path, a)
				}
			}
			if a := call(t, ts, "POST", issue, viewer, "application/pkcs10", csr); a.status != http.StatusForbidden || a.typ != "urn:signet:error:rejected" {
				t.Fatalf("viewer issues: %+v, want 403", a)
			}
			if a := call(t, ts, "POST", "/api/v1/certificates/01/revoke", viewer, "application/json", `{}`); a.status != http.StatusForbidden {
				t.Fatalf("viewer revokes: %+v, want 403", a)
			}
			if a := call(t, ts, "POST", issue, oper, "application/pkcs10", csr); a.status != http.StatusCreated && a.status != http.StatusOK {
				t.Fatalf("operator issues: %+v", a)
			}
			if a := call(t, ts, "POST", issue, "secret", "application/pkcs10", csr); a.status != http.StatusCreated && a.status != http.StatusOK {
				t.Fatalf("admin token issues: %+v", a)
			}
			if a := call(t, ts, "GET", "/api/v1/authorities", "not-a-token", "", ""); a.status != http.StatusUnauthorized || a.typ != "urn:signet:error:unauthorized" {
				t.Fatalf("unknown token: %+v, want 401", a)
			}
			var actors []string
			err := f.store.Events(ctx, func(e audit.Event) error {
				if e.Kind == audit.KindCertificateIssue {
					actors = append(actors, e.Actor)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(actors) != 2 || actors[0] != "operator:otto" || actors[1] != "api:admin-token" {
				t.Fatalf("issue events name %q, want operator:otto then api:admin-token", actors)
			}

			if err := f.store.RemoveOperator(ctx, "otto", audit.Event{Actor: "cli"}); err != nil {
				t.Fatal(err)
			}
			if a := call(t, ts, "GET", "/api/v1/authorities", oper, "", ""); a.status != http.StatusUnauthorized {
				t.Fatalf("removed operator's token: %+v, want 401", a)
			}
			if rep, err := audit.Verify(ctx, f.store); err != nil || !rep.Intact() {
				t.Fatalf("audit verify after operator changes: %+v, %v", rep, err)
			}
		})
	}
}
