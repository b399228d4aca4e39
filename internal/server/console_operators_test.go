package server_test

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"signet/internal/store"
)

// apiStatus is the status of GET path on the API with token.
func (cf *consoleFixture) apiStatus(t *testing.T, method, path, token string) int {
	t.Helper()
	req, _ := http.NewRequest(method, cf.url+path, strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := cf.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// operatorNames are the store's operators, removed ones marked so.
func (cf *consoleFixture) operatorNames(t *testing.T) []string {
	t.Helper()
	ops, err := cf.f.store.Operators(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, op := range ops {
		n := op.Name + ":" + op.Role
		if op.RemovedAt != nil {
			n += ":removed"
		}
		names = append(names, n)
	}
	return names
}

var operatorToken = regexp.MustCompile(`id="operator-token"[^>]*>([^<]+)<`)

// TestConsoleOperators: an admin adds an operator, whose token is shown
// once and works on the API with the role given, and removes it after a
// confirmation, and its token is refused; both are audited in the admin's
// name. A bad name is refused as the CLI refuses it, shown as text.
func TestConsoleOperators(t *testing.T) {
	cf := newConsoleFixture(t, nil)
	ctx := context.Background()
	b := cf.browser(t)
	b.signIn("secret")
	if _, body := b.get("/ui/"); !strings.Contains(body, `href="/ui/operators"`) {
		t.Errorf("an admin's nav has no Operators link:\n%s", body)
	}
	token := b.csrf("/ui/operators")
	resp, body := b.post("/ui/operators", url.Values{"csrf": {token}, "name": {"vera"}, "role": {store.RoleViewer}})
	m := operatorToken.FindStringSubmatch(body)
	if resp.StatusCode != 200 || m == nil || !strings.HasPrefix(m[1], "signet-op-") {
		t.Fatalf("add operator: %d, no token shown\n%s", resp.StatusCode, body)
	}
	vera := m[1]
	ops, _ := cf.f.store.Operators(ctx)
	if len(ops) != 1 || ops[0].Name != "vera" || ops[0].Role != store.RoleViewer || sha256.Sum256([]byte(vera)) != [32]byte(ops[0].TokenHash) {
		t.Fatalf("operators: %+v; want vera, a viewer, with only her token's hash", ops)
	}
	if got := cf.apiStatus(t, "GET", "/api/v1/authorities", vera); got != 200 {
		t.Errorf("the new viewer's token reading the API: %d; want 200", got)
	}
	if got := cf.apiStatus(t, "POST", "/api/v1/lock", vera); got != http.StatusForbidden {
		t.Errorf("the new viewer's token locking: %d; want 403, a viewer's role", got)
	}
	_, body = b.get("/ui/operators")
	if strings.Contains(body, vera) || !strings.Contains(body, "vera") || !strings.Contains(body, `href="/ui/operators/vera/remove"`) {
		t.Errorf("the operators page: want vera with a remove link and not her token\n%s", body)
	}
	events, _ := cf.f.store.AuditEvents(ctx, store.EventFilter{Kind: "operator.add"})
	if len(events) != 1 || events[0].Actor != "ui:admin-token" || !strings.Contains(string(events[0].Data), `"role":"viewer"`) {
		t.Errorf("operator.add events: %+v; want one by ui:admin-token with the role", events)
	}

	// Same validation as the CLI; the bad name is escaped text.
	for _, form := range []url.Values{
		{"csrf": {token}, "name": {"<b>eve</b>"}, "role": {store.RoleAdmin}},
		{"csrf": {token}, "name": {"eve"}, "role": {"root"}},
		{"csrf": {token}, "name": {"vera"}, "role": {store.RoleAdmin}},
	} {
		resp, body := b.post("/ui/operators", form)
		if resp.StatusCode < 400 || operatorToken.MatchString(body) || strings.Contains(body, "<b>") {
			t.Errorf("add %v: %d; want refused, no token, no markup\n%s", form, resp.StatusCode, body)
		}
	}
	if _, body := b.post("/ui/operators", url.Values{"csrf": {token}, "name": {"<b>eve</b>"}, "role": {store.RoleAdmin}}); !strings.Contains(body, "&lt;b&gt;eve&lt;/b&gt;") {
		t.Errorf("the refused name is not shown as text:\n%s", body)
	}

	// Removal needs the confirmation step.
	path := "/ui/operators/vera/remove"
	rtoken := b.csrf(path)
	if resp, _ := b.post(path, url.Values{"csrf": {rtoken}, "confirm": {"ver"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("remove without the confirmation: %d; want 400", resp.StatusCode)
	}
	if got := cf.apiStatus(t, "GET", "/api/v1/authorities", vera); got != 200 {
		t.Fatalf("an unconfirmed removal removed vera: %d", got)
	}
	resp, body = b.post(path, url.Values{"csrf": {rtoken}, "confirm": {"vera"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove: %d\n%s", resp.StatusCode, body)
	}
	if got := cf.apiStatus(t, "GET", "/api/v1/authorities", vera); got != http.StatusUnauthorized {
		t.Errorf("a removed operator's token: %d; want 401", got)
	}
	events, _ = cf.f.store.AuditEvents(ctx, store.EventFilter{Kind: "operator.remove"})
	if len(events) != 1 || events[0].Actor != "ui:admin-token" {
		t.Errorf("operator.remove events: %+v; want one by ui:admin-token", events)
	}
	if _, body := b.get(resp.Header.Get("Location")); !strings.Contains(body, "Operator vera removed") {
		t.Errorf("the page after removing does not say so:\n%s", body)
	}
	if _, body := b.get("/ui/operators?removed=ada"); strings.Contains(body, "Operator ada removed") {
		t.Errorf("the operators page claims a removal that did not happen:\n%s", body)
	}
	if got := cf.operatorNames(t); !slices.Equal(got, []string{"vera:viewer:removed"}) {
		t.Errorf("operators after removing: %v", got)
	}
}

// TestConsoleOperatorsAdminsOnly: viewers and operators get no link to
// the operators page and are refused every one of its requests, which
// change nothing; an admin's form without its CSRF token changes nothing.
func TestConsoleOperatorsAdminsOnly(t *testing.T) {
	cf := newConsoleFixture(t, nil)
	for _, role := range []string{store.RoleViewer, store.RoleOperator} {
		b := cf.browser(t)
		b.signIn(cf.addOperator(t, "someone-"+role, role))
		before := cf.operatorNames(t)
		_, body := b.get("/ui/")
		if strings.Contains(body, "/ui/operators") {
			t.Errorf("%s's nav links the operators page:\n%s", role, body)
		}
		token := b.csrf("/ui/")
		for _, tc := range []struct {
			method, path string
			form         url.Values
		}{
			{"GET", "/ui/operators", nil},
			{"POST", "/ui/operators", url.Values{"csrf": {token}, "name": {"mallory"}, "role": {store.RoleAdmin}}},
			{"GET", "/ui/operators/someone-viewer/remove", nil},
			{"POST", "/ui/operators/someone-viewer/remove", url.Values{"csrf": {token}, "confirm": {"someone-viewer"}}},
		} {
			var resp *http.Response
			if tc.method == "GET" {
				resp, body = b.get(tc.path)
			} else {
				resp, body = b.post(tc.path, tc.form)
			}
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "your role "+role+" may not") || operatorToken.MatchString(body) {
				t.Errorf("%s %s %s: %d; want 403 naming the role\n%s", role, tc.method, tc.path, resp.StatusCode, body)
			}
		}
		if after := cf.operatorNames(t); !slices.Equal(before, after) {
			t.Errorf("%s changed the operators: %v to %v", role, before, after)
		}
	}

	admin := cf.browser(t)
	admin.signIn("secret")
	token := admin.csrf("/ui/operators")
	other := cf.browser(t)
	other.signIn("secret")
	before := cf.operatorNames(t)
	for name, form := range map[string]url.Values{
		"add, no CSRF token":      {"name": {"mallory"}, "role": {store.RoleAdmin}},
		"add, another's token":    {"csrf": {other.csrf("/ui/")}, "name": {"mallory"}, "role": {store.RoleAdmin}},
		"add, altered token":      {"csrf": {token + "x"}, "name": {"mallory"}, "role": {store.RoleAdmin}},
		"remove, no CSRF token":   {"confirm": {"someone-viewer"}},
		"remove, another's token": {"csrf": {other.csrf("/ui/")}, "confirm": {"someone-viewer"}},
	} {
		path := "/ui/operators"
		if strings.HasPrefix(name, "remove") {
			path = "/ui/operators/someone-viewer/remove"
		}
		if resp, body := admin.post(path, form); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "CSRF") {
			t.Errorf("%s: %d; want 403 naming the CSRF token\n%s", name, resp.StatusCode, body)
		}
	}
	if after := cf.operatorNames(t); !slices.Equal(before, after) {
		t.Errorf("forms without the CSRF token changed the operators: %v to %v", before, after)
	}
}

// TestConsoleCertificateDeployed: a certificate's page lists the endpoints
// signet check --record found serving it, and only those, as escaped
// text (an endpoint's name is whatever the operator's probe was told).
func TestConsoleCertificateDeployed(t *testing.T) {
	cf := newConsoleFixture(t, nil)
	ctx := context.Background()
	serial := cf.issueOne(t, "www.example.org")
	other := cf.issueOne(t, "mail.example.org")
	now := time.Now()
	for _, c := range []store.EndpointCheck{
		{Endpoint: "www.example.org:443", Name: "www.example.org", Serial: serial, NotAfter: now.Add(time.Hour), CheckedAt: now, Verdict: "ok"},
		{Endpoint: "<img src=x onerror=alert(1)>:5222", StartTLS: "xmpp", Name: "<script>alert(2)</script>", Serial: serial, CheckedAt: now, Verdict: "warn"},
		{Endpoint: "mail.example.org:25", StartTLS: "smtp", Name: "mail.example.org", Serial: other, CheckedAt: now, Verdict: "fail"},
	} {
		if err := cf.f.store.RecordEndpointCheck(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	b := cf.browser(t)
	b.signIn("secret")
	resp, body := b.get("/ui/certificates/" + serial)
	if resp.StatusCode != 200 {
		t.Fatalf("certificate page: %d\n%s", resp.StatusCode, body)
	}
	for _, want := range []string{"www.example.org:443", "&lt;img src=x onerror=alert(1)&gt;:5222", "STARTTLS xmpp",
		"&lt;script&gt;alert(2)&lt;/script&gt;", ">warn<", ">ok<"} {
		if !strings.Contains(body, want) {
			t.Errorf("the certificate page lacks %q\n%s", want, body)
		}
	}
	if strings.Contains(body, "<img") || strings.Contains(body, "<script") || strings.Contains(body, "mail.example.org:25") {
		t.Errorf("the certificate page renders markup or another certificate's endpoint:\n%s", body)
	}
	if _, body := b.get("/ui/certificates/" + other); !strings.Contains(body, "mail.example.org:25") || !strings.Contains(body, "STARTTLS smtp") || strings.Contains(body, "www.example.org:443") {
		t.Errorf("the other certificate's page: want only mail.example.org:25\n%s", body)
	}
	if _, body := b.get("/ui/certificates/" + cf.issueOne(t, "new.example.org")); !strings.Contains(body, "No recorded deployment") {
		t.Errorf("an undeployed certificate's page does not say so:\n%s", body)
	}
}
