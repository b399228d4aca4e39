package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"signet/internal/audit"
	"signet/internal/ca"
	"signet/internal/kms"
	"signet/internal/lint"
	"signet/internal/policy"
	"signet/internal/profile"
	"signet/internal/server"
	"signet/internal/store"
	"signet/internal/store/postgres"
	"signet/internal/store/postgres/pgtest"
	"signet/internal/store/sqlite"
)

// onBackends runs test with a fresh store of each backend: SQLite, and
// PostgreSQL when SIGNET_TEST_POSTGRES names a server.
func onBackends(t *testing.T, test func(t *testing.T, st store.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		test(t, st)
	})
	t.Run("postgres", func(t *testing.T) {
		st, err := postgres.Open(context.Background(), pgtest.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		test(t, st)
	})
}

// readFixture is a CA with authorities web and vpn under a root, many
// recorded certificates of both, and an API server over it.
type readFixture struct {
	st    store.Store
	ca    *ca.CA
	url   string
	now   time.Time
	certs []store.Certificate // as recorded (status as recorded too)
}

func newReadFixture(t *testing.T, st store.Store) *readFixture {
	t.Helper()
	ctx := context.Background()
	t.Setenv("TEST_PASSPHRASE", "a long test passphrase")
	keys := kms.NewManager(kms.Options{Dir: t.TempDir(), Passphrase: kms.Source("env:TEST_PASSPHRASE")})
	t.Cleanup(func() { keys.Close() })
	for _, uri := range []string{"file:root.key", "file:web.key", "file:vpn.key", "file:users.key", "file:hosts.key"} {
		if _, err := keys.Generate(ctx, uri, kms.ECDSAP256); err != nil {
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
		{Name: "web", Purpose: profile.TLSServer, KeyURI: "file:web.key", Policy: policy.Policy{DNS: []string{"example.org"}}},
		{Name: "vpn", Purpose: profile.VPN, KeyURI: "file:vpn.key", Policy: policy.Policy{DNS: []string{"example.org"}}},
		{Name: "users", Purpose: profile.SSHUser, KeyURI: "file:users.key", Policy: policy.Policy{Principals: []string{"*"}}},
		{Name: "hosts", Purpose: profile.SSHHost, KeyURI: "file:hosts.key", Policy: policy.Policy{Principals: []string{"*"}}},
	} {
		if _, err := c.CreateAuthority(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	f := &readFixture{st: st, ca: c, now: time.Now()}
	// 61 certificates: expiring from 10 hours ago to 50 days ahead, every
	// seventh internal, two of them sharing a not_after (order by serial).
	for i := range 61 {
		serial := fmt.Sprintf("%04x", 0x1000+i)
		authority := []string{"web", "vpn"}[i%2]
		notAfter := f.now.Add(time.Duration(i*20-10) * time.Hour).Truncate(time.Second)
		if i == 30 {
			notAfter = f.certs[29].NotAfter
		}
		cert := store.Certificate{
			Serial: serial, Authority: authority, Subject: fmt.Sprintf("CN=host%d.example.org", i),
			DNSNames: []string{fmt.Sprintf("host%d.example.org", i)}, NotBefore: f.now.Add(-24 * time.Hour).Truncate(time.Second),
			NotAfter: notAfter, Status: store.Valid, Requester: "api:test", DER: []byte{0x30, byte(i)}, Internal: i%7 == 3,
		}
		ev := audit.Event{Kind: audit.KindCertificateIssue, Actor: []string{"api:a", "cli"}[i%2], Authority: authority, Subject: serial}
		if err := st.RecordCertificate(ctx, cert, ev); err != nil {
			t.Fatal(err)
		}
		f.certs = append(f.certs, cert)
	}
	ts := httptest.NewServer(server.New(server.Options{CA: c, Store: st, AdminToken: []byte("secret")}).Handler())
	t.Cleanup(ts.Close)
	f.url = ts.URL
	return f
}

// get asks the API for path with the admin token (none if token is "")
// and decodes its JSON answer into out when the status is 200.
func (f *readFixture) get(t *testing.T, token, path string, out any) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", f.url+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == 200 && out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("GET %s: %v\n%s", path, err, body)
		}
	}
	return resp.StatusCode, string(body)
}

type certItem struct {
	Serial    string
	Authority string
	Status    string
	NotAfter  time.Time `json:"not_after"`
	Internal  bool
	RevokedAt *time.Time `json:"revoked_at"`
	Reason    string     `json:"revocation_reason"`
	Chain     []string
	Events    []struct {
		Seq     int64
		Kind    string
		Actor   string
		Subject string
	}
	Deployed []struct {
		Endpoint, StartTLS, Name, Verdict string
	}
}

// walk follows the certificates' pages of query, limit rows at a time, and
// returns the serials in the order served; it fails if a page is larger
// than limit or the walk does not end.
func (f *readFixture) walk(t *testing.T, query url.Values, limit int) []string {
	t.Helper()
	var serials []string
	query = maps.Clone(query)
	if query == nil {
		query = url.Values{}
	}
	query.Set("limit", fmt.Sprint(limit))
	for range len(f.certs) + 2 {
		var p struct {
			Items []certItem
			Next  string
		}
		if code, body := f.get(t, "secret", "/api/v1/certificates?"+query.Encode(), &p); code != 200 {
			t.Fatalf("GET certificates?%s: %d %s", query.Encode(), code, body)
		}
		if len(p.Items) > limit {
			t.Fatalf("a page of %d certificates with limit=%d", len(p.Items), limit)
		}
		for _, c := range p.Items {
			serials = append(serials, c.Serial)
		}
		if p.Next == "" {
			return serials
		}
		query.Set("cursor", p.Next)
	}
	t.Fatalf("the walk of certificates?%s does not end", query.Encode())
	return nil
}

// want lists the serials of the recorded certificates keep selects, in
// (not_after, serial) order.
func (f *readFixture) want(keep func(store.Certificate) bool) []string {
	list := slices.Clone(f.certs)
	slices.SortFunc(list, func(a, b store.Certificate) int {
		if c := a.NotAfter.Compare(b.NotAfter); c != 0 {
			return c
		}
		return strings.Compare(a.Serial, b.Serial)
	})
	var out []string
	for _, c := range list {
		if keep(c) {
			out = append(out, c.Serial)
		}
	}
	return out
}

// TestCertificateList: GET /api/v1/certificates pages through every
// certificate a filter selects, each exactly once, in (not_after, serial)
// order, on both backends.
func TestCertificateList(t *testing.T) {
	onBackends(t, func(t *testing.T, st store.Store) {
		f := newReadFixture(t, st)
		revoked := f.certs[12].Serial
		if _, err := f.ca.Revoke(context.Background(), revoked, 1, "test"); err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		for _, tc := range []struct {
			query string
			keep  func(store.Certificate) bool
		}{
			{"", func(c store.Certificate) bool { return !c.Internal }},
			{"internal=true", func(store.Certificate) bool { return true }},
			{"internal=false&authority=web", func(c store.Certificate) bool { return !c.Internal && c.Authority == "web" }},
			{"status=expired", func(c store.Certificate) bool { return !c.Internal && c.NotAfter.Before(now) }},
			{"status=revoked&internal=true", func(c store.Certificate) bool { return c.Serial == revoked }},
			{"status=valid", func(c store.Certificate) bool { return !c.Internal && c.Serial != revoked && c.NotAfter.After(now) }},
			{"expiring=7d&internal=true", func(c store.Certificate) bool {
				return c.NotAfter.After(now) && c.NotAfter.Before(f.now.Add(7*24*time.Hour))
			}},
			{"name=HOST1", func(c store.Certificate) bool { return !c.Internal && strings.Contains(c.Subject, "host1") }},
			{"serial=" + strings.ToUpper(f.certs[5].Serial), func(c store.Certificate) bool { return c.Serial == f.certs[5].Serial }},
		} {
			want := f.want(tc.keep)
			if len(want) == 0 {
				t.Fatalf("%q selects nothing: the fixture does not test it", tc.query)
			}
			q, _ := url.ParseQuery(tc.query)
			for _, limit := range []int{1, 7, 500} {
				if got := f.walk(t, q, limit); !slices.Equal(got, want) {
					t.Errorf("certificates?%s, limit=%d:\n got %v\nwant %v", tc.query, limit, got, want)
				}
			}
		}
		// The default page is 50 rows.
		var p struct {
			Items []certItem
			Next  string
		}
		if code, body := f.get(t, "secret", "/api/v1/certificates?internal=true", &p); code != 200 || len(p.Items) != 50 || p.Next == "" {
			t.Errorf("default page: %d, %d items, next %q; want 50 and a next\n%s", code, len(p.Items), p.Next, body)
		}
		// A revoked certificate says when and why.
		var one struct{ Items []certItem }
		f.get(t, "secret", "/api/v1/certificates?status=revoked", &one)
		if len(one.Items) != 1 || one.Items[0].RevokedAt == nil || one.Items[0].Reason != "keyCompromise" {
			t.Errorf("revoked certificate listed as %+v", one.Items)
		}
	})
}

// TestReadAPIRefusesBadInput: unauthenticated requests get 401, bad
// parameters a 400 problem naming the parameter; nothing is listed.
func TestReadAPIRefusesBadInput(t *testing.T) {
	onBackends(t, func(t *testing.T, st store.Store) {
		f := newReadFixture(t, st)
		for _, path := range []string{"/api/v1/certificates", "/api/v1/certificates/1000", "/api/v1/audit/events"} {
			for _, token := range []string{"", "wrong"} {
				if code, body := f.get(t, token, path, nil); code != 401 || !strings.Contains(body, "urn:signet:error:unauthorized") {
					t.Errorf("GET %s with token %q: %d %s", path, token, code, body)
				}
			}
		}
		long := strings.Repeat("a", 300)
		for _, tc := range []struct{ path, param string }{
			{"/api/v1/certificates?limit=0", "limit"},
			{"/api/v1/certificates?limit=501", "limit"},
			{"/api/v1/certificates?limit=ten", "limit"},
			{"/api/v1/certificates?status=lost", "status"},
			{"/api/v1/certificates?expiring=soon", "expiring"},
			{"/api/v1/certificates?expiring=-1h", "expiring"},
			{"/api/v1/certificates?internal=yes", "internal"},
			{"/api/v1/certificates?serial=xyz", "serial"},
			{"/api/v1/certificates?name=" + long, "name"},
			{"/api/v1/certificates?cursor=***", "cursor"},
			{"/api/v1/certificates?cursor=" + url.QueryEscape("ZmZmZg"), "cursor"},     // "ffff": no such certificate
			{"/api/v1/certificates?cursor=" + url.QueryEscape("bm90IGhleA"), "cursor"}, // "not hex"
			{"/api/v1/certificates?statuss=valid", "statuss"},
			{"/api/v1/certificates?status=valid&status=revoked", "status"},
			{"/api/v1/certificates/not-hex", "not-hex"},
			{"/api/v1/audit/events?since=yesterday", "since"},
			{"/api/v1/audit/events?until=2026-13-01T00:00:00Z", "until"},
			{"/api/v1/audit/events?limit=1000", "limit"},
			{"/api/v1/audit/events?cursor=LTE", "cursor"}, // "-1"
			{"/api/v1/audit/events?subject=x", "subject"},
		} {
			code, body := f.get(t, "secret", tc.path, nil)
			if code != 400 || !strings.Contains(body, "urn:signet:error:malformed") || !strings.Contains(body, `\"`+tc.param+`\"`) && !strings.Contains(body, tc.param) {
				t.Errorf("GET %s: %d %s; want a 400 malformed problem naming %q", tc.path, code, body, tc.param)
			}
		}
	})
}

// TestCertificateDetail: GET /api/v1/certificates/{serial} carries the
// chain up to the root, the revocation, the audit events of that serial
// and the endpoints signet check recorded serving it.
func TestCertificateDetail(t *testing.T) {
	onBackends(t, func(t *testing.T, st store.Store) {
		f := newReadFixture(t, st)
		ctx := context.Background()
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"www.example.org"}}, key)
		if err != nil {
			t.Fatal(err)
		}
		csr, _ := x509.ParseCertificateRequest(der)
		iss, err := f.ca.Issue(ctx, ca.Request{Authority: "web", CSR: csr, Actor: "api:issuer"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.ca.Revoke(ctx, iss.Serial, 4, "api:revoker"); err != nil {
			t.Fatal(err)
		}
		// signet check --record found it on one endpoint.
		if err := st.RecordEndpointCheck(ctx, store.EndpointCheck{Endpoint: "www.example.org:5222", StartTLS: "xmpp", Name: "example.org",
			Serial: iss.Serial, NotAfter: time.Now().Add(time.Hour), CheckedAt: time.Now(), Verdict: "fail"}); err != nil {
			t.Fatal(err)
		}
		var c certItem
		if code, body := f.get(t, "secret", "/api/v1/certificates/"+strings.ToUpper(iss.Serial), &c); code != 200 {
			t.Fatalf("%d %s", code, body)
		}
		if c.Serial != iss.Serial || c.Status != "revoked" || c.RevokedAt == nil || c.Reason != "superseded" {
			t.Errorf("certificate %+v; want %s revoked, superseded", c, iss.Serial)
		}
		// The chain verifies the certificate up to the root.
		leaf, _ := x509.ParseCertificate(iss.DER)
		root, err := f.ca.Root(ctx)
		if err != nil {
			t.Fatal(err)
		}
		roots, inter := x509.NewCertPool(), x509.NewCertPool()
		roots.AddCert(root)
		for _, p := range c.Chain {
			b, _ := pem.Decode([]byte(p))
			cert, err := x509.ParseCertificate(b.Bytes)
			if b == nil || err != nil {
				t.Fatalf("chain entry %q: %v", p, err)
			}
			inter.AddCert(cert)
		}
		if len(c.Chain) != 1 {
			t.Errorf("chain of %d certificates, want the issuing authority's", len(c.Chain))
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: "www.example.org", CurrentTime: leaf.NotBefore.Add(time.Minute)}); err != nil {
			t.Errorf("the chain does not verify the certificate: %v", err)
		}
		var kinds []string
		for _, e := range c.Events {
			if e.Subject != iss.Serial {
				t.Errorf("event %+v is not about %s", e, iss.Serial)
			}
			kinds = append(kinds, e.Kind+" by "+e.Actor)
		}
		if want := []string{"certificate.issue by api:issuer", "certificate.revoke by api:revoker"}; !slices.Equal(kinds, want) {
			t.Errorf("events %v, want %v", kinds, want)
		}
		if len(c.Deployed) != 1 || c.Deployed[0].Endpoint != "www.example.org:5222" || c.Deployed[0].Verdict != "fail" || c.Deployed[0].Name != "example.org" {
			t.Errorf("deployed %+v; want the one recorded endpoint", c.Deployed)
		}
		if code, body := f.get(t, "secret", "/api/v1/certificates/abcdef", nil); code != 404 {
			t.Errorf("unknown serial: %d %s, want 404", code, body)
		}
	})
}

// TestAuditEventList: GET /api/v1/audit/events pages through the log in
// seq order, each event once, with kind, actor and time filters.
func TestAuditEventList(t *testing.T) {
	onBackends(t, func(t *testing.T, st store.Store) {
		f := newReadFixture(t, st)
		var all []audit.Event
		if err := st.Events(context.Background(), func(e audit.Event) error { all = append(all, e); return nil }); err != nil {
			t.Fatal(err)
		}
		mid := all[len(all)/2].Time
		for _, tc := range []struct {
			query string
			keep  func(audit.Event) bool
		}{
			{"", func(audit.Event) bool { return true }},
			{"kind=certificate.issue", func(e audit.Event) bool { return e.Kind == "certificate.issue" }},
			{"actor=cli&kind=certificate.issue", func(e audit.Event) bool { return e.Kind == "certificate.issue" && e.Actor == "cli" }},
			{"since=" + mid.Format(time.RFC3339Nano), func(e audit.Event) bool { return !e.Time.Before(mid) }},
			{"until=" + mid.Format(time.RFC3339Nano), func(e audit.Event) bool { return e.Time.Before(mid) }},
		} {
			var want []int64
			for _, e := range all {
				if tc.keep(e) {
					want = append(want, e.Seq)
				}
			}
			if len(want) == 0 || len(want) == len(all) && tc.query != "" {
				t.Fatalf("%q selects %d of %d events: the fixture does not test it", tc.query, len(want), len(all))
			}
			q, _ := url.ParseQuery(tc.query)
			for _, limit := range []int{1, 9} {
				q.Set("limit", fmt.Sprint(limit))
				q.Del("cursor")
				var got []int64
				for range len(all) + 2 {
					var p struct {
						Items []struct{ Seq int64 }
						Next  string
					}
					if code, body := f.get(t, "secret", "/api/v1/audit/events?"+q.Encode(), &p); code != 200 || len(p.Items) > limit {
						t.Fatalf("audit/events?%s: %d, %d items\n%s", q.Encode(), code, len(p.Items), body)
					}
					for _, e := range p.Items {
						got = append(got, e.Seq)
					}
					if p.Next == "" {
						break
					}
					q.Set("cursor", p.Next)
				}
				if !slices.Equal(got, want) {
					t.Errorf("audit/events?%s, limit=%d:\n got %v\nwant %v", tc.query, limit, got, want)
				}
			}
		}
	})
}

// sshFixture records 40 SSH certificates: of users (even) and hosts (odd),
// key IDs k0..k4, principals p<i mod 3> and the shared "all<", and
// revokes serials divisible by 9.
func (f *readFixture) sshFixture(t *testing.T) []store.SSHCertificate {
	t.Helper()
	ctx := context.Background()
	var certs []store.SSHCertificate
	for i := range 40 {
		authority := []string{"users", "hosts"}[i%2]
		keys, err := f.st.SSHKeys(ctx, authority)
		if err != nil || len(keys) != 1 {
			t.Fatalf("keys of %s: %v %v", authority, keys, err)
		}
		c := store.SSHCertificate{
			Serial: uint64(100 + i), Authority: authority, CAFingerprint: keys[0].Fingerprint, KeyID: fmt.Sprintf("k%d", i%5),
			Type: []store.SSHCertType{store.SSHUserCert, store.SSHHostCert}[i%2], Principals: []string{fmt.Sprintf("p%d", i%3), "all<"},
			ValidAfter: f.now.Truncate(time.Second), ValidBefore: f.now.Add(time.Hour).Truncate(time.Second), Status: store.Valid,
			Requester: "api:test", Cert: []byte{byte(i)},
		}
		if err := f.st.RecordSSHCertificate(ctx, c, audit.Event{Kind: audit.KindSSHCertificateIssue, Actor: "api:test", Authority: authority, Subject: store.SSHSubject(c.Serial)}); err != nil {
			t.Fatal(err)
		}
		if c.Serial%9 == 0 {
			if err := f.st.RevokeSSHCertificate(ctx, c.Serial, f.now, audit.Event{Kind: audit.KindSSHCertificateRevoke, Actor: "api:test", Authority: authority, Subject: store.SSHSubject(c.Serial)}); err != nil {
				t.Fatal(err)
			}
			c.Status = store.Revoked
		}
		certs = append(certs, c)
	}
	return certs
}

// TestSSHReadAPI: GET /api/v1/ssh/certificates pages through every SSH
// certificate a filter selects, each once, by serial; GET /api/v1/ssh/keys
// lists the SSH authorities' CA keys.
func TestSSHReadAPI(t *testing.T) {
	onBackends(t, func(t *testing.T, st store.Store) {
		f := newReadFixture(t, st)
		certs := f.sshFixture(t)
		for _, tc := range []struct {
			query string
			keep  func(store.SSHCertificate) bool
		}{
			{"", func(store.SSHCertificate) bool { return true }},
			{"authority=hosts", func(c store.SSHCertificate) bool { return c.Authority == "hosts" }},
			{"status=revoked", func(c store.SSHCertificate) bool { return c.Status == store.Revoked }},
			{"status=valid&authority=users", func(c store.SSHCertificate) bool { return c.Status == store.Valid && c.Authority == "users" }},
			{"principal=p1", func(c store.SSHCertificate) bool { return slices.Contains(c.Principals, "p1") }},
			{"principal=p", func(store.SSHCertificate) bool { return false }},
			{"principal=all<", func(store.SSHCertificate) bool { return true }},
			{"key_id=k3&principal=p0", func(c store.SSHCertificate) bool { return c.KeyID == "k3" && slices.Contains(c.Principals, "p0") }},
		} {
			var want []uint64
			for _, c := range certs {
				if tc.keep(c) {
					want = append(want, c.Serial)
				}
			}
			for _, limit := range []int{1, 6, 500} {
				q, _ := url.ParseQuery(tc.query)
				q.Set("limit", fmt.Sprint(limit))
				var got []uint64
				for range len(certs) + 2 {
					var p struct {
						Items []struct {
							Serial     uint64
							Status     string
							Principals []string
							RevokedAt  *time.Time `json:"revoked_at"`
						}
						Next string
					}
					if code, body := f.get(t, "secret", "/api/v1/ssh/certificates?"+q.Encode(), &p); code != 200 || len(p.Items) > limit {
						t.Fatalf("ssh/certificates?%s: %d, %d items\n%s", q.Encode(), code, len(p.Items), body)
					}
					for _, c := range p.Items {
						got = append(got, c.Serial)
						if (c.Status == "revoked") != (c.RevokedAt != nil) {
							t.Errorf("SSH certificate %d: status %s, revoked_at %v", c.Serial, c.Status, c.RevokedAt)
						}
					}
					if p.Next == "" {
						break
					}
					q.Set("cursor", p.Next)
				}
				if !slices.Equal(got, want) {
					t.Errorf("ssh/certificates?%s, limit=%d:\n got %v\nwant %v", tc.query, limit, got, want)
				}
			}
		}
		for _, tc := range []struct{ path, param string }{
			{"/api/v1/ssh/certificates?status=expired", "status"},
			{"/api/v1/ssh/certificates?cursor=MA", "cursor"}, // "0"
			{"/api/v1/ssh/certificates?limit=501", "limit"},
			{"/api/v1/ssh/certificates?principal=" + strings.Repeat("p", 300), "principal"},
			{"/api/v1/ssh/keys?state=active", "state"},
		} {
			if code, body := f.get(t, "secret", tc.path, nil); code != 400 || !strings.Contains(body, "urn:signet:error:malformed") || !strings.Contains(body, tc.param) {
				t.Errorf("GET %s: %d %s; want a 400 malformed problem naming %q", tc.path, code, body, tc.param)
			}
		}
		for _, path := range []string{"/api/v1/ssh/certificates", "/api/v1/ssh/keys"} {
			if code, body := f.get(t, "", path, nil); code != 401 || !strings.Contains(body, "urn:signet:error:unauthorized") {
				t.Errorf("GET %s unauthenticated: %d %s", path, code, body)
			}
		}
		var keys []struct {
			Authority, Fingerprint, State, Key string
			PublicKey                          string `json:"public_key"`
		}
		if code, body := f.get(t, "secret", "/api/v1/ssh/keys", &keys); code != 200 {
			t.Fatalf("ssh/keys: %d %s", code, body)
		}
		var got []string
		for _, k := range keys {
			stored, err := st.SSHKeys(context.Background(), k.Authority)
			if err != nil || len(stored) != 1 || stored[0].Fingerprint != k.Fingerprint || stored[0].PublicKey != k.PublicKey {
				t.Errorf("key %+v is not the stored %+v (%v)", k, stored, err)
			}
			got = append(got, k.Authority+" "+k.State+" "+k.Key)
		}
		if want := []string{"hosts active file:hosts.key", "users active file:users.key"}; !slices.Equal(got, want) {
			t.Errorf("ssh/keys lists %v, want %v", got, want)
		}
		keys = nil
		if f.get(t, "secret", "/api/v1/ssh/keys?authority=users", &keys); len(keys) != 1 || keys[0].Authority != "users" {
			t.Errorf("ssh/keys?authority=users: %+v", keys)
		}
	})
}

// TestACMEReadAPI: GET /api/v1/acme/accounts pages through the accounts a
// filter selects, each once, by ID; GET /api/v1/acme/accounts/{id}/orders
// pages through that account's orders alone, without challenge tokens.
func TestACMEReadAPI(t *testing.T) {
	onBackends(t, func(t *testing.T, st store.Store) {
		f := newReadFixture(t, st)
		ctx := context.Background()
		var accounts []store.ACMEAccount
		for i := range 23 {
			a := store.ACMEAccount{ID: fmt.Sprintf("acct%02d", i), Authority: []string{"web", "vpn"}[i%2], KeyID: fmt.Sprintf("thumb%d", i),
				Key: []byte(`{"kty":"EC"}`), Contacts: []string{"javascript:alert(1)"}, Status: store.StatusValid}
			if i%5 == 0 {
				a.Status = store.StatusDeactivated
			}
			if err := st.CreateACMEAccount(ctx, a, audit.Event{Actor: "acme"}); err != nil {
				t.Fatal(err)
			}
			accounts = append(accounts, a)
		}
		orders := map[string][]string{}
		for i := range 15 {
			account := []string{"acct00", "acct00", "acct02"}[i%3]
			id := fmt.Sprintf("order%02d", i)
			o := store.ACMEOrder{ID: id, Authority: "web", AccountID: account, Status: store.StatusPending, Expires: f.now.Add(time.Hour),
				Identifiers: []store.ACMEIdentifier{{Type: "dns", Value: id + ".example.org"}},
				Authzs: []store.ACMEAuthz{{Identifier: store.ACMEIdentifier{Type: "dns", Value: id + ".example.org"}, Status: store.StatusPending,
					Challenges: []store.ACMEChallenge{{Type: "http-01", Token: "secret-token-" + id, Status: store.StatusPending}}}}}
			if err := st.CreateACMEOrder(ctx, o, audit.Event{Actor: "acme:" + account}); err != nil {
				t.Fatal(err)
			}
			orders[account] = append(orders[account], id)
		}
		// walk follows the pages of path and returns the IDs served.
		walk := func(path string, query url.Values, limit int) []string {
			t.Helper()
			query = maps.Clone(query)
			query.Set("limit", fmt.Sprint(limit))
			var ids []string
			for range 30 {
				var p struct {
					Items []struct {
						ID       string
						Contacts []string
						Authzs   []map[string]any `json:"authorizations"`
					}
					Next string
				}
				code, body := f.get(t, "secret", path+"?"+query.Encode(), &p)
				if code != 200 || len(p.Items) > limit {
					t.Fatalf("%s?%s: %d, %d items\n%s", path, query.Encode(), code, len(p.Items), body)
				}
				if strings.Contains(body, "secret-token-") {
					t.Errorf("%s shows a challenge token: %s", path, body)
				}
				for _, it := range p.Items {
					ids = append(ids, it.ID)
				}
				if p.Next == "" {
					return ids
				}
				query.Set("cursor", p.Next)
			}
			t.Fatalf("the walk of %s does not end", path)
			return nil
		}
		for _, tc := range []struct {
			query string
			keep  func(store.ACMEAccount) bool
		}{
			{"", func(store.ACMEAccount) bool { return true }},
			{"authority=vpn", func(a store.ACMEAccount) bool { return a.Authority == "vpn" }},
			{"status=deactivated&authority=web", func(a store.ACMEAccount) bool { return a.Status == store.StatusDeactivated && a.Authority == "web" }},
		} {
			var want []string
			for _, a := range accounts {
				if tc.keep(a) {
					want = append(want, a.ID)
				}
			}
			q, _ := url.ParseQuery(tc.query)
			for _, limit := range []int{1, 4, 500} {
				if got := walk("/api/v1/acme/accounts", q, limit); !slices.Equal(got, want) {
					t.Errorf("acme/accounts?%s, limit=%d:\n got %v\nwant %v", tc.query, limit, got, want)
				}
			}
		}
		for _, account := range []string{"acct00", "acct02", "acct01"} {
			for _, limit := range []int{1, 3} {
				if got := walk("/api/v1/acme/accounts/"+account+"/orders", url.Values{}, limit); !slices.Equal(got, orders[account]) {
					t.Errorf("orders of %s, limit=%d:\n got %v\nwant %v", account, limit, got, orders[account])
				}
			}
		}
		if code, body := f.get(t, "secret", "/api/v1/acme/accounts/nobody/orders", nil); code != 404 || !strings.Contains(body, "urn:signet:error:notFound") && !strings.Contains(body, "not found") {
			t.Errorf("orders of an unknown account: %d %s, want 404", code, body)
		}
		for _, tc := range []struct{ path, param string }{
			{"/api/v1/acme/accounts?status=pending", "status"},
			{"/api/v1/acme/accounts?limit=-1", "limit"},
			{"/api/v1/acme/accounts?contact=x", "contact"},
			{"/api/v1/acme/accounts/acct00/orders?status=valid", "status"},
			{"/api/v1/acme/accounts/acct00/orders?cursor=%25", "cursor"},
		} {
			if code, body := f.get(t, "secret", tc.path, nil); code != 400 || !strings.Contains(body, "urn:signet:error:malformed") || !strings.Contains(body, tc.param) {
				t.Errorf("GET %s: %d %s; want a 400 malformed problem naming %q", tc.path, code, body, tc.param)
			}
		}
		for _, path := range []string{"/api/v1/acme/accounts", "/api/v1/acme/accounts/acct00/orders"} {
			if code, body := f.get(t, "", path, nil); code != 401 || !strings.Contains(body, "urn:signet:error:unauthorized") {
				t.Errorf("GET %s unauthenticated: %d %s", path, code, body)
			}
		}
	})
}

// TestEndpointList: GET /api/v1/endpoints lists what signet check --record
// recorded, all or those serving one certificate, to administrators only.
func TestEndpointList(t *testing.T) {
	onBackends(t, func(t *testing.T, st store.Store) {
		f := newReadFixture(t, st)
		ctx := context.Background()
		at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
		for _, c := range []store.EndpointCheck{
			{Endpoint: "www.example.org:443", Name: "www.example.org", Serial: "0a1b", NotAfter: at.Add(time.Hour), CheckedAt: at, Verdict: "ok"},
			{Endpoint: "db.example.org:5432", StartTLS: "postgres", Name: "db.example.org", CheckedAt: at, Verdict: "fail"},
		} {
			if err := st.RecordEndpointCheck(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		type item struct {
			Endpoint, StartTLS, Name, Verdict, Serial string
			NotAfter                                  *time.Time `json:"not_after"`
			CheckedAt                                 time.Time  `json:"checked_at"`
		}
		var all []item
		if code, body := f.get(t, "secret", "/api/v1/endpoints", &all); code != 200 {
			t.Fatalf("%d %s", code, body)
		}
		if len(all) != 2 || all[0].Endpoint != "db.example.org:5432" || all[0].StartTLS != "postgres" || all[0].Serial != "" || all[0].NotAfter != nil ||
			all[1].Serial != "0a1b" || all[1].NotAfter == nil || !all[1].NotAfter.Equal(at.Add(time.Hour)) || !all[1].CheckedAt.Equal(at) || all[1].Verdict != "ok" {
			t.Errorf("endpoints %+v", all)
		}
		var one []item
		if code, body := f.get(t, "secret", "/api/v1/endpoints?serial=0A1B", &one); code != 200 || len(one) != 1 || one[0].Endpoint != "www.example.org:443" {
			t.Errorf("serial=0A1B: %d %s", code, body)
		}
		if code, body := f.get(t, "secret", "/api/v1/endpoints?serial=zz", nil); code != 400 || !strings.Contains(body, "serial") {
			t.Errorf("serial=zz: %d %s, want a 400 naming serial", code, body)
		}
		if code, _ := f.get(t, "", "/api/v1/endpoints", nil); code != 401 {
			t.Errorf("without a credential: %d, want 401", code)
		}
	})
}
