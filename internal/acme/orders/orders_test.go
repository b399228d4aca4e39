package orders_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"signet/internal/acme"
	"signet/internal/acme/orders"
	"signet/internal/acme/va"
	"signet/internal/audit"
	"signet/internal/config"
	"signet/internal/errs"
	"signet/internal/home"
	"signet/internal/policy"
	"signet/internal/profile"
	"signet/internal/store"
	"signet/internal/store/postgres/pgtest"
)

// fakeVA answers every validation with the error set for the identifier
// (nil: valid) and counts the validations it ran.
type fakeVA struct {
	mu   sync.Mutex
	fail map[string]error
	runs int
}

func (f *fakeVA) Validate(_ context.Context, _ string, id acme.Identifier, _, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs++
	return f.fail[id.Value]
}

// env is an order book over a fresh home: the home's CA and store, on
// SQLite or, with a URL, PostgreSQL.
type env struct {
	t     *testing.T
	h     *home.Home
	va    *fakeVA
	book  *orders.Book
	auth  orders.Authority
	acct  string
	key   crypto.PublicKey // the account's key
	clock time.Time
	reuse time.Duration // the books' Options.AuthzReuse
}

func newEnv(t *testing.T, storeURL string) *env {
	t.Helper()
	ctx := context.Background()
	h, _, err := home.Init(ctx, t.TempDir(), home.InitOptions{Actor: "test", Store: storeURL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	chain, err := h.CA.Chain(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := x509.ParseCertificate(chain[0])
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, h: h, va: &fakeVA{fail: map[string]error{}}, acct: "a1", clock: time.Now(),
		auth: orders.Authority{Name: "default", Policy: policy.Policy{DNS: []string{"example.org"}}, SKI: issuer.SubjectKeyId,
			Profiles: map[string]orders.Profile{"default": {Usage: profile.Server}}}}
	acctKey := newKey(t)
	e.key = acctKey.Public()
	a := store.ACMEAccount{ID: e.acct, Authority: "default", KeyID: "thumb", Key: []byte(`{"kty":"EC"}`), Status: store.StatusValid, CreatedAt: time.Now()}
	if err := h.Store.CreateACMEAccount(ctx, a, audit.Event{}); err != nil {
		t.Fatal(err)
	}
	e.book = e.node()
	return e
}

// node is another order book on e's store: another node of a cluster.
func (e *env) node() *orders.Book {
	b := orders.New(context.Background(), orders.Options{Store: e.h.Store, CA: e.h.CA, VA: e.va,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: func() time.Time { return e.clock }, AuthzReuse: e.reuse})
	e.t.Cleanup(b.Close)
	return b
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (e *env) create(names ...string) store.ACMEOrder {
	e.t.Helper()
	var in acme.NewOrderRequest
	for _, n := range names {
		in.Identifiers = append(in.Identifiers, acme.Identifier{Type: "dns", Value: n})
	}
	o, err := e.book.Create(context.Background(), &e.auth, e.acct, in)
	if err != nil {
		e.t.Fatal(err)
	}
	return o
}

// start starts a validation (Book.Validate), failing the test on an error.
func (e *env) start(o store.ACMEOrder, n int, typ, keyID string) *orders.Validation {
	e.t.Helper()
	v, err := e.book.Validate(o, n, typ, keyID)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// validate validates every authorization of o with http-01 and returns
// the order as recorded.
func (e *env) validate(o store.ACMEOrder) store.ACMEOrder {
	e.t.Helper()
	for n := range o.Authzs {
		v := e.start(o, n, acme.HTTP01, "thumb")
		if v == nil {
			e.t.Fatalf("authorization %d of a pending order: nothing to validate", n)
		}
		var err error
		if o, err = v.Order(context.Background()); err != nil {
			e.t.Fatal(err)
		}
	}
	return o
}

// stored reads o again.
func (e *env) stored(id string) store.ACMEOrder {
	e.t.Helper()
	o, err := e.h.Store.ACMEOrder(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return o
}

func csr(t *testing.T, key crypto.Signer, names ...string) acme.FinalizeRequest {
	t.Helper()
	if key == nil {
		key = newKey(t)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: names[0]}, DNSNames: names}, key)
	if err != nil {
		t.Fatal(err)
	}
	return acme.FinalizeRequest{CSR: base64.RawURLEncoding.EncodeToString(der)}
}

// events counts the audit events of kind.
func (e *env) events(kind string) int {
	e.t.Helper()
	n := 0
	if err := e.h.Store.Events(context.Background(), func(ev audit.Event) error {
		if ev.Kind == kind {
			n++
		}
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// orderEvents returns the events of order id, as "kind status" (the
// status in their data, if any), and checks their actor.
func (e *env) orderEvents(id string) []string {
	e.t.Helper()
	var out []string
	if err := e.h.Store.Events(context.Background(), func(ev audit.Event) error {
		if ev.Subject != id {
			return nil
		}
		if ev.Actor != "acme:"+e.acct || ev.Authority != "default" {
			e.t.Errorf("event %s of order %s by %q at %q", ev.Kind, id, ev.Actor, ev.Authority)
		}
		var data struct{ Status string }
		json.Unmarshal(ev.Data, &data)
		out = append(out, strings.TrimSpace(ev.Kind+" "+data.Status))
		return nil
	}); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func wantEvents(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
}

func (e *env) certificates() []store.Certificate {
	e.t.Helper()
	certs, err := e.h.Store.Certificates(context.Background(), store.Filter{Authority: "default"})
	if err != nil {
		e.t.Fatal(err)
	}
	return certs
}

func wantType(t *testing.T, err error, typ acme.ProblemType, kind errs.Kind) {
	t.Helper()
	var ae *acme.Error
	if !errors.As(err, &ae) || ae.Type != typ || errs.KindOf(err) != kind {
		t.Fatalf("got %v, want a %s %s error", err, kind, typ)
	}
}

// TestCreateRefusesAndStoresNothing: an order the authority cannot take
// is refused with the problem that says why, and nothing is stored.
func TestCreateRefusesAndStoresNothing(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	dns := func(v string) []acme.Identifier { return []acme.Identifier{{Type: "dns", Value: v}} }
	many := make([]acme.Identifier, config.DefaultLimits().IdentifiersPerOrder+1)
	for i := range many {
		many[i] = acme.Identifier{Type: "dns", Value: "www.example.org"}
	}
	for _, tc := range []struct {
		name string
		in   acme.NewOrderRequest
		typ  acme.ProblemType // "": by kind
		kind errs.Kind
	}{
		{"no identifiers", acme.NewOrderRequest{}, "", errs.Malformed},
		{"too many", acme.NewOrderRequest{Identifiers: many}, "", errs.RateLimited},
		{"notAfter", acme.NewOrderRequest{Identifiers: dns("www.example.org"), NotAfter: "2030-01-01T00:00:00Z"}, "", errs.Malformed},
		{"unknown profile", acme.NewOrderRequest{Identifiers: dns("www.example.org"), Profile: "forever"}, acme.InvalidProfile, errs.Malformed},
		{"email identifier", acme.NewOrderRequest{Identifiers: []acme.Identifier{{Type: "email", Value: "a@example.org"}}}, acme.UnsupportedIdentifier, errs.Malformed},
		{"bad ip", acme.NewOrderRequest{Identifiers: []acme.Identifier{{Type: "ip", Value: "fe80::1%eth0"}}}, "", errs.Malformed},
		{"outside the policy", acme.NewOrderRequest{Identifiers: dns("www.example.com")}, "", errs.Rejected},
		{"wildcard", acme.NewOrderRequest{Identifiers: dns("*.example.org")}, "", errs.Rejected},
		{"replaces garbage", acme.NewOrderRequest{Identifiers: dns("www.example.org"), Replaces: "nope"}, "", errs.Malformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.book.Create(ctx, &e.auth, e.acct, tc.in)
			if tc.typ != "" {
				wantType(t, err, tc.typ, tc.kind)
			} else if errs.KindOf(err) != tc.kind {
				t.Fatalf("got %v, want %s", err, tc.kind)
			}
		})
	}
	if list, err := e.h.Store.ACMEOrders(ctx, store.ACMEOrderFilter{AccountID: e.acct}); err != nil || len(list) != 0 {
		t.Fatalf("refused orders left %d orders (%v)", len(list), err)
	}
	if n := e.events(audit.KindACMEOrderCreate); n != 0 {
		t.Fatalf("refused orders wrote %d events", n)
	}
}

// TestCreate: a new order is pending, as stored, with one pending
// authorization per distinct identifier, in canonical form.
func TestCreate(t *testing.T) {
	e := newEnv(t, "")
	o := e.create("WWW.example.org.", "www.example.org", "mail.example.org")
	got := e.stored(o.ID)
	if got.Version != o.Version || len(got.Authzs) != 2 || got.Authzs[0].Identifier.Value != "www.example.org" {
		t.Fatalf("stored order %+v, returned %+v", got, o)
	}
	if s := e.book.Status(&got); s != store.StatusPending {
		t.Fatalf("a new order is %s", s)
	}
	wantEvents(t, e.orderEvents(o.ID), audit.KindACMEOrderCreate)
	for n, az := range got.Authzs {
		if az.Status != store.StatusPending || len(az.Challenges) != 3 {
			t.Fatalf("authorization %d: %+v", n, az)
		}
	}
	e.clock = o.Expires.Add(time.Second)
	if s, as := e.book.Status(&got), e.book.AuthzStatus(&got, 0); s != store.StatusInvalid || as != store.StatusExpired {
		t.Fatalf("past its expiry an order is %s, its authorization %s", s, as)
	}
}

// TestValidation: a validation's outcome moves the challenge and its
// authorization together, and the order to ready once all are valid or to
// invalid with the failure; a decided authorization is validated no more.
func TestValidation(t *testing.T) {
	e := newEnv(t, "")
	o := e.create("www.example.org", "bad.example.org")
	e.va.fail["bad.example.org"] = &va.Failure{Type: acme.IncorrectResponse, Detail: "wrong key authorization"}
	v := e.start(o, 0, acme.HTTP01, "thumb")
	o, err := v.Order(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	az := o.Authzs[0]
	if az.Status != store.StatusValid || az.Challenges[0].Status != store.StatusValid || az.Challenges[0].Validated.IsZero() {
		t.Fatalf("after a successful validation: %+v", az)
	}
	if e.book.Status(&o) != store.StatusPending {
		t.Fatalf("with one authorization pending the order is %s", e.book.Status(&o))
	}
	if v := e.start(o, 0, acme.DNS01, "thumb"); v != nil {
		t.Fatal("a valid authorization was validated again")
	}
	o, _ = e.start(o, 1, acme.TLSALPN01, "thumb").Order(context.Background())
	if c := o.Authzs[1].Challenges[2]; o.Authzs[1].Status != store.StatusInvalid || c.Status != store.StatusInvalid || c.ErrorType != string(acme.IncorrectResponse) {
		t.Fatalf("after a failed validation: %+v", o.Authzs[1])
	}
	if got := e.stored(o.ID); e.book.Status(&got) != store.StatusInvalid || got.Status != store.StatusInvalid || got.Version != 3 {
		t.Fatalf("stored order after a failed validation: %s (stored %s), version %d", e.book.Status(&got), got.Status, got.Version)
	}
	// What the store counts (signet_acme_orders): ready once every
	// authorization is valid.
	if ready := e.validate(e.create("ready.example.org")); e.stored(ready.ID).Status != store.StatusReady {
		t.Fatalf("a ready order is stored %s", e.stored(ready.ID).Status)
	}
	runs := e.va.runs
	if v := e.start(o, 1, acme.HTTP01, "thumb"); v != nil || e.va.runs != runs {
		t.Fatal("an invalid authorization was validated again")
	}
	wantEvents(t, e.orderEvents(o.ID), audit.KindACMEOrderCreate, audit.KindACMEAuthzValidate+" valid", audit.KindACMEAuthzValidate+" invalid")
}

// TestValidationOfAStaleOrder: a node validating from an order read
// before another node decided the authorization records nothing.
func TestValidationOfAStaleOrder(t *testing.T) {
	e := newEnv(t, "")
	stale := e.create("www.example.org")
	if _, err := e.node().Deactivate(context.Background(), stale, 0); err != nil {
		t.Fatal(err)
	}
	o, err := e.start(stale, 0, acme.HTTP01, "thumb").Order(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if o.Authzs[0].Status != store.StatusDeactivated || o.Version != 2 {
		t.Fatalf("a validation overwrote a deactivation: %+v", o)
	}
	wantEvents(t, e.orderEvents(o.ID), audit.KindACMEOrderCreate, audit.KindACMEAuthzDeactivate)
}

// TestDeactivate: a pending or valid authorization can be deactivated,
// which invalidates its order; nothing else can, and a refusal changes
// nothing.
func TestDeactivate(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	o := e.validate(e.create("www.example.org"))
	o, err := e.book.Deactivate(ctx, o, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := e.stored(o.ID)
	if got.Authzs[0].Status != store.StatusDeactivated || e.book.Status(&got) != store.StatusInvalid || got.Status != store.StatusInvalid || got.Version != o.Version {
		t.Fatalf("after deactivation: %+v", got)
	}
	if _, err := e.book.Deactivate(ctx, got, 0); errs.KindOf(err) != errs.Malformed {
		t.Fatalf("deactivating again: %v", err)
	}
	if again := e.stored(o.ID); again.Version != got.Version {
		t.Fatal("a refused deactivation wrote the order")
	}
	wantEvents(t, e.orderEvents(o.ID), audit.KindACMEOrderCreate, audit.KindACMEAuthzValidate+" valid", audit.KindACMEAuthzDeactivate)
}

// TestFinalize: a ready order is finalized once, into a certificate for
// exactly its identifiers recorded with its issue event in the order's
// transaction; what is not ready, or a CSR that does not fit, is refused
// and issues nothing.
func TestFinalize(t *testing.T) {
	e := newEnv(t, "")
	ctx := context.Background()
	o := e.create("www.example.org")
	if _, err := e.book.Finalize(ctx, &e.auth, o, e.key, csr(t, nil, "www.example.org")); err != nil {
		wantType(t, err, acme.OrderNotReady, errs.Unauthorized)
	} else {
		t.Fatal("a pending order was finalized")
	}
	o = e.validate(o)
	for _, tc := range []struct {
		name string
		in   acme.FinalizeRequest
	}{
		{"not base64", acme.FinalizeRequest{CSR: "!!"}},
		{"not a CSR", acme.FinalizeRequest{CSR: "AAAA"}},
		{"other names", csr(t, nil, "mail.example.org")},
		{"more names", csr(t, nil, "www.example.org", "mail.example.org")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.book.Finalize(ctx, &e.auth, o, e.key, tc.in)
			var ae *acme.Error
			if !errors.As(err, &ae) || ae.Type != acme.BadCSR {
				t.Fatalf("got %v, want badCSR", err)
			}
		})
	}
	acctKey := newKey(t)
	if _, err := e.book.Finalize(ctx, &e.auth, o, acctKey.Public(), csr(t, acctKey, "www.example.org")); err == nil {
		t.Fatal("a CSR for the account key was accepted")
	}
	if n := len(e.certificates()); n != 0 {
		t.Fatalf("refused finalizations issued %d certificates", n)
	}

	done, err := e.book.Finalize(ctx, &e.auth, o, e.key, csr(t, nil, "WWW.example.org"))
	if err != nil {
		t.Fatal(err)
	}
	got := e.stored(o.ID)
	certs := e.certificates()
	if len(certs) != 1 || got.Status != store.StatusValid || got.CertSerial != certs[0].Serial || done.CertSerial != got.CertSerial || done.Version != got.Version {
		t.Fatalf("after finalize: stored %+v, returned %+v, %d certificates", got, done, len(certs))
	}
	if c := certs[0]; c.Requester != "acme:"+e.acct || len(c.DNSNames) != 1 || c.DNSNames[0] != "www.example.org" {
		t.Fatalf("certificate %+v", c)
	}
	if n := e.events(audit.KindCertificateIssue); n != 1 {
		t.Fatalf("%d certificate.issue events, want 1", n)
	}
	if _, err := e.book.Finalize(ctx, &e.auth, got, e.key, csr(t, nil, "www.example.org")); err == nil {
		t.Fatal("a valid order was finalized again")
	} else {
		wantType(t, err, acme.OrderNotReady, errs.Unauthorized)
	}
}

// TestFinalizeRaceAcrossNodes: two nodes that read one order as ready
// both finalize it; the store lets one certificate through, the other
// node answers orderNotReady and its signature is audited as discarded.
// On SQLite and on PostgreSQL.
func TestFinalizeRaceAcrossNodes(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			url := ""
			if backend == "postgres" {
				url = pgtest.URL(t)
			}
			e := newEnv(t, url)
			ctx := context.Background()
			read := e.validate(e.create("www.example.org"))
			other := e.node()
			if _, err := other.Finalize(ctx, &e.auth, read, e.key, csr(t, nil, "www.example.org")); err != nil {
				t.Fatal(err)
			}
			_, err := e.book.Finalize(ctx, &e.auth, read, e.key, csr(t, nil, "www.example.org"))
			wantType(t, err, acme.OrderNotReady, errs.Unauthorized)
			if n := len(e.certificates()); n != 1 {
				t.Fatalf("%d certificates for one order", n)
			}
			if got := e.stored(read.ID); got.Version != read.Version+1 {
				t.Fatalf("order at version %d after one finalize from %d", got.Version, read.Version)
			}
			if n := e.events(audit.KindCertificateDiscard); n != 1 {
				t.Fatalf("%d certificate.discard events, want 1", n)
			}
			if _, err := audit.Verify(ctx, e.h.Store); err != nil {
				t.Fatal(err)
			}
		})
	}
}
