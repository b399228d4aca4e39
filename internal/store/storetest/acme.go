package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
)

func acmeAccount(id, authority, keyID string) store.ACMEAccount {
	return store.ACMEAccount{ID: id, Authority: authority, KeyID: keyID, Key: []byte(`{"kty":"EC","k":"` + keyID + `"}`),
		Contacts: []string{"mailto:" + id + "@example.org"}, Status: store.StatusValid, CreatedAt: t0}
}

func acmeOrder(id, authority, account string) store.ACMEOrder {
	return store.ACMEOrder{
		ID: id, Authority: authority, AccountID: account, Status: store.StatusPending, Expires: t0.Add(time.Hour),
		Identifiers: []store.ACMEIdentifier{{Type: "dns", Value: id + ".example.org"}},
		Authzs: []store.ACMEAuthz{{Identifier: store.ACMEIdentifier{Type: "dns", Value: id + ".example.org"}, Status: store.StatusPending,
			Challenges: []store.ACMEChallenge{{Type: "http-01", Token: "tok-" + id, Status: store.StatusPending}}}},
		Profile: "default", CreatedAt: t0,
	}
}

func testACMEAccounts(t *testing.T, s store.Store) {
	mustAuthority(t, s, "root", "")
	mustAuthority(t, s, "tls", "root")
	a := acmeAccount("acct1", "tls", "thumb1")
	if err := s.CreateACMEAccount(ctx, a, audit.Event{Actor: "acme"}); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.CreateACMEAccount(ctx, acmeAccount("acct2", "tls", "thumb1"), audit.Event{}), errs.Conflict, "same key twice")
	wantKind(t, s.CreateACMEAccount(ctx, acmeAccount("acct3", "nope", "thumb3"), audit.Event{}), errs.NotFound, "unknown authority")
	// The same key may hold an account at another authority.
	if err := s.CreateACMEAccount(ctx, acmeAccount("acct4", "root", "thumb1"), audit.Event{}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ACMEAccount(ctx, "acct1")
	if err != nil || got.KeyID != "thumb1" || string(got.Key) != string(a.Key) || len(got.Contacts) != 1 ||
		got.Status != store.StatusValid || !got.CreatedAt.Equal(t0) || got.Authority != "tls" {
		t.Fatalf("account: %+v, %v", got, err)
	}
	got, err = s.ACMEAccountByKey(ctx, "tls", "thumb1")
	if err != nil || got.ID != "acct1" {
		t.Fatalf("by key: %+v, %v", got, err)
	}
	_, err = s.ACMEAccountByKey(ctx, "tls", "nope")
	wantKind(t, err, errs.NotFound, "unknown key")
	_, err = s.ACMEAccount(ctx, "nope")
	wantKind(t, err, errs.NotFound, "unknown account")

	// Key rollover, contacts and deactivation, each conditional on the
	// account as read.
	read := got
	if err := s.ChangeACMEAccountKey(ctx, read, "thumb9", []byte(`{"k":"9"}`), audit.Event{Actor: "acme"}); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.UpdateACMEAccountContacts(ctx, read, nil, audit.Event{Actor: "acme"}), errs.Conflict, "contacts update by the old key")
	wantKind(t, s.ChangeACMEAccountKey(ctx, read, "thumb8", []byte(`{"k":"8"}`), audit.Event{Actor: "acme"}), errs.Conflict, "second rollover from the old key")
	if err := s.CreateACMEAccount(ctx, acmeAccount("acct5", "tls", "thumb5"), audit.Event{}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.ACMEAccount(ctx, "acct1")
	wantKind(t, s.ChangeACMEAccountKey(ctx, got, "thumb5", []byte(`{"k":"5"}`), audit.Event{}), errs.Conflict, "rollover to a taken key")
	if err := s.UpdateACMEAccountContacts(ctx, got, nil, audit.Event{Actor: "acme"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeactivateACMEAccount(ctx, got, audit.Event{Actor: "acme"}); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.DeactivateACMEAccount(ctx, got, audit.Event{}), errs.Conflict, "second deactivation")
	wantKind(t, s.UpdateACMEAccountContacts(ctx, got, []string{"mailto:x@example.org"}, audit.Event{}), errs.Conflict, "update of a deactivated account")
	got, err = s.ACMEAccountByKey(ctx, "tls", "thumb9")
	if err != nil || got.Status != store.StatusDeactivated || len(got.Contacts) != 0 || string(got.Key) != `{"k":"9"}` {
		t.Fatalf("after the changes: %+v, %v", got, err)
	}
	ghost := acmeAccount("ghost", "tls", "ghost")
	wantKind(t, s.UpdateACMEAccountContacts(ctx, ghost, nil, audit.Event{}), errs.NotFound, "update of a missing account")
	checkChain(t, s)
}

// testACMEAccountRaces runs account changes that race, each from the
// account as read before any of them: a contact update, a key rollover
// and a deactivation. The rollover and the deactivation exclude each
// other: whichever comes first wins, and the other finds the account
// changed. The contact update depends on neither and writes neither, so it
// never brings the old key back or makes the account valid again.
func testACMEAccountRaces(t *testing.T, s store.Store) {
	mustAuthority(t, s, "root", "")
	mustAuthority(t, s, "tls", "root")
	for round := range 8 {
		id := fmt.Sprintf("race%d", round)
		if err := s.CreateACMEAccount(ctx, acmeAccount(id, "tls", "old"+id), audit.Event{}); err != nil {
			t.Fatal(err)
		}
		read, err := s.ACMEAccount(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var rollover, update, deactivate error
		wg.Go(func() { rollover = s.ChangeACMEAccountKey(ctx, read, "new"+id, []byte(`{"k":"new"}`), audit.Event{}) })
		wg.Go(func() {
			update = s.UpdateACMEAccountContacts(ctx, read, []string{"mailto:new@example.org"}, audit.Event{})
		})
		wg.Go(func() { deactivate = s.DeactivateACMEAccount(ctx, read, audit.Event{}) })
		wg.Wait()
		for _, err := range []error{rollover, update, deactivate} {
			if err != nil && errs.KindOf(err) != errs.Conflict {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		got, err := s.ACMEAccount(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		wantKey, wantStatus := "old"+id, store.StatusDeactivated
		switch {
		case (rollover == nil) == (deactivate == nil):
			t.Fatalf("round %d: rollover %v, deactivation %v; want exactly one to succeed", round, rollover, deactivate)
		case rollover == nil:
			wantKey, wantStatus = "new"+id, store.StatusValid
		}
		if got.KeyID != wantKey || got.Status != wantStatus {
			t.Errorf("round %d: account has key %s and is %s, want %s and %s (update: %v)", round, got.KeyID, got.Status, wantKey, wantStatus, update)
		}
		if newContacts := len(got.Contacts) == 1 && got.Contacts[0] == "mailto:new@example.org"; newContacts != (update == nil) {
			t.Errorf("round %d: contacts %v after the update returned %v", round, got.Contacts, update)
		}
	}
	checkChain(t, s)
}

func testACMEOrders(t *testing.T, s store.Store) {
	mustAuthority(t, s, "root", "")
	mustAuthority(t, s, "tls", "root")
	for _, id := range []string{"a1", "a2"} {
		if err := s.CreateACMEAccount(ctx, acmeAccount(id, "tls", "k"+id), audit.Event{}); err != nil {
			t.Fatal(err)
		}
	}
	o := acmeOrder("o1", "tls", "a1")
	before := len(events(t, s))
	if err := s.CreateACMEOrder(ctx, o, audit.Event{Actor: "acme:a1"}); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.CreateACMEOrder(ctx, o, audit.Event{}), errs.Conflict, "duplicate order")
	wantKind(t, s.CreateACMEOrder(ctx, acmeOrder("o9", "tls", "nobody"), audit.Event{}), errs.NotFound, "order of a missing account")
	wantKind(t, s.CreateACMEOrder(ctx, acmeOrder("o8", "root", "a1"), audit.Event{}), errs.NotFound, "order at another authority than the account's")
	wantKind(t, s.CreateACMEOrder(ctx, store.ACMEOrder{ID: "x"}, audit.Event{}), errs.Malformed, "empty order")
	wantKind(t, s.CreateACMEOrder(ctx, acmeOrder("o7", "tls", "a1"), audit.Event{Kind: "acme.order.update"}), errs.Malformed, "order created with another event")
	if evs := events(t, s)[before:]; len(evs) != 1 || evs[0].Kind != audit.KindACMEOrderCreate || evs[0].Subject != "o1" || evs[0].Authority != "tls" {
		t.Fatalf("events of one order created and five refused: %+v", evs)
	}
	got, err := s.ACMEOrder(ctx, "o1")
	if err != nil || got.Version != 1 || got.Status != store.StatusPending || !got.Expires.Equal(o.Expires) ||
		len(got.Authzs) != 1 || got.Authzs[0].Challenges[0].Token != "tok-o1" || got.Profile != "default" || !got.CreatedAt.Equal(t0) {
		t.Fatalf("order: %+v, %v", got, err)
	}
	// Optimistic concurrency: the first update wins, the stale one is refused.
	stale := got
	got.Authzs[0].Status, got.Authzs[0].Challenges[0].Status = store.StatusValid, store.StatusValid
	got.Authzs[0].Challenges[0].Validated = t0
	got.Status = store.StatusReady
	if err := s.UpdateACMEOrder(ctx, got, audit.Event{Kind: audit.KindACMEAuthzValidate}); err != nil {
		t.Fatal(err)
	}
	stale.Status = store.StatusInvalid
	wantKind(t, s.UpdateACMEOrder(ctx, stale, audit.Event{Kind: audit.KindACMEAuthzValidate}), errs.Conflict, "stale update")
	wantKind(t, s.UpdateACMEOrder(ctx, got, audit.Event{}), errs.Malformed, "update without an event kind")
	if evs := events(t, s)[before:]; len(evs) != 2 || evs[1].Kind != audit.KindACMEAuthzValidate || evs[1].Subject != "o1" {
		t.Fatalf("events after one update and two refused: %+v", evs)
	}
	got, _ = s.ACMEOrder(ctx, "o1")
	if got.Version != 2 || got.Status != store.StatusReady || !got.Authzs[0].Challenges[0].Validated.Equal(t0) {
		t.Fatalf("after update: %+v", got)
	}
	missing := acmeOrder("zz", "tls", "a1")
	wantKind(t, s.UpdateACMEOrder(ctx, missing, audit.Event{Kind: audit.KindACMEAuthzValidate}), errs.NotFound, "update of a missing order")

	// Certificates: the order that issued one, and the one replacing it (ARI).
	c := cert("0abc", "tls", 10)
	mustRecord(t, s, c)
	got.Status, got.CertSerial = store.StatusValid, "0abc"
	if err := s.UpdateACMEOrder(ctx, got, audit.Event{Kind: audit.KindACMEAuthzValidate}); err != nil {
		t.Fatal(err)
	}
	o2 := acmeOrder("o2", "tls", "a1")
	o2.Replaces = "0abc"
	if err := s.CreateACMEOrder(ctx, o2, audit.Event{}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateACMEOrder(ctx, acmeOrder("o3", "tls", "a2"), audit.Event{}); err != nil {
		t.Fatal(err)
	}
	list := func(f store.ACMEOrderFilter) string {
		t.Helper()
		os, err := s.ACMEOrders(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		ids := ""
		for _, o := range os {
			ids += o.ID + " "
		}
		return ids
	}
	for _, tc := range []struct {
		f    store.ACMEOrderFilter
		want string
	}{
		{store.ACMEOrderFilter{AccountID: "a1"}, "o1 o2 "},
		{store.ACMEOrderFilter{AccountID: "a1", Limit: 1}, "o1 "},
		{store.ACMEOrderFilter{AccountID: "a1", AfterID: "o1"}, "o2 "},
		{store.ACMEOrderFilter{AccountID: "a2"}, "o3 "},
		{store.ACMEOrderFilter{CertSerial: "0abc"}, "o1 "},
		{store.ACMEOrderFilter{Replaces: "0abc"}, "o2 "},
	} {
		if got := list(tc.f); got != tc.want {
			t.Errorf("orders %+v = %q, want %q", tc.f, got, tc.want)
		}
	}
	_, err = s.ACMEOrders(ctx, store.ACMEOrderFilter{})
	wantKind(t, err, errs.Malformed, "unfiltered order list")

	// What the account limits count: a1 has o1 (valid, its certificate
	// issued) and o2 (one pending authorization); a2 has o3.
	load, err := s.ACMEAccountLoad(ctx, "a1", t0, t0.Add(time.Minute))
	if err != nil || load.OrdersSince != 2 || load.PendingAuthzs != 1 {
		t.Fatalf("load of a1: %+v, %v; want 2 orders, 1 pending authorization", load, err)
	}
	if load, err := s.ACMEAccountLoad(ctx, "a1", t0.Add(time.Second), t0.Add(2*time.Hour)); err != nil || load != (store.ACMEAccountLoad{}) {
		t.Fatalf("load of a1 once its orders are old and expired: %+v, %v; want none", load, err)
	}

	// Cleanup, in bounded batches: o2 and o3 expired without a
	// certificate; o1's certificate is still valid until t0+10h.
	n, err := s.DeleteStaleACMEOrders(ctx, t0.Add(2*time.Hour), 1)
	if err != nil || n != 1 {
		t.Fatalf("delete stale, at most 1: %d, %v; want 1", n, err)
	}
	if n, err = s.DeleteStaleACMEOrders(ctx, t0.Add(2*time.Hour), 10); err != nil || n != 1 {
		t.Fatalf("delete the other stale one: %d, %v; want 1", n, err)
	}
	if _, err := s.ACMEOrder(ctx, "o1"); err != nil {
		t.Fatalf("the order of a live certificate went: %v", err)
	}
	if n, err := s.DeleteStaleACMEOrders(ctx, t0.Add(11*time.Hour), 10); err != nil || n != 1 {
		t.Fatalf("delete after the certificate expired: %d, %v; want 1", n, err)
	}
	_, err = s.ACMEOrder(ctx, "o1")
	wantKind(t, err, errs.NotFound, "deleted order")
}

func testACMEEAB(t *testing.T, s store.Store) {
	mustAuthority(t, s, "root", "")
	mustAuthority(t, s, "tls", "root")
	k := store.EABKey{ID: "kid1", Authority: "tls", Sealed: []byte("sealed"), CreatedAt: t0}
	if err := s.CreateEABKey(ctx, k, audit.Event{Actor: "cli"}); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.CreateEABKey(ctx, k, audit.Event{}), errs.Conflict, "duplicate EAB key")
	wantKind(t, s.CreateEABKey(ctx, store.EABKey{ID: "kid2", Authority: "nope", Sealed: []byte("x")}, audit.Event{}), errs.NotFound, "EAB key of a missing authority")
	a := acmeAccount("acct1", "tls", "t1")
	a.EABKeyID = "kid1"
	other := acmeAccount("acct0", "root", "t0")
	other.EABKeyID = "kid1"
	wantKind(t, s.CreateACMEAccount(ctx, other, audit.Event{}), errs.NotFound, "EAB key of another authority")
	if err := s.CreateACMEAccount(ctx, a, audit.Event{}); err != nil {
		t.Fatal(err)
	}
	b := acmeAccount("acct2", "tls", "t2")
	b.EABKeyID = "kid1"
	wantKind(t, s.CreateACMEAccount(ctx, b, audit.Event{}), errs.Conflict, "EAB key used twice")
	b.EABKeyID = "nokey"
	wantKind(t, s.CreateACMEAccount(ctx, b, audit.Event{}), errs.NotFound, "unknown EAB key")
	if _, err := s.ACMEAccount(ctx, "acct2"); errs.KindOf(err) != errs.NotFound {
		t.Errorf("a refused account was recorded: %v", err)
	}
	got, err := s.EABKey(ctx, "kid1")
	if err != nil || got.AccountID != "acct1" || string(got.Sealed) != "sealed" || !got.CreatedAt.Equal(t0) {
		t.Fatalf("EAB key: %+v, %v", got, err)
	}
	acct, _ := s.ACMEAccount(ctx, "acct1")
	if acct.EABKeyID != "kid1" {
		t.Errorf("account EAB key %q", acct.EABKeyID)
	}
	checkChain(t, s)
}

func testSecret(t *testing.T, s store.Store) {
	// Concurrent first uses agree on one value: nodes sharing a store must.
	var wg sync.WaitGroup
	got := make([]string, 8)
	for i := range got {
		wg.Go(func() {
			v, err := s.Secret(ctx, "nonce", []byte(fmt.Sprint("value", i)))
			if err != nil {
				t.Error(err)
			}
			got[i] = string(v)
		})
	}
	wg.Wait()
	for _, v := range got {
		if v != got[0] || v == "" {
			t.Fatalf("secrets disagree: %q", got)
		}
	}
	if v, _ := s.Secret(ctx, "nonce", []byte("later")); string(v) != got[0] {
		t.Errorf("secret changed to %q", v)
	}
	_, err := s.Secret(ctx, "", []byte("x"))
	wantKind(t, err, errs.Malformed, "nameless secret")
}

// testACMEFinalize: a certificate that finalizes an order is recorded with
// the order's move to valid, atomically; of two finalizations racing from
// the same version (two nodes), exactly one certificate is recorded.
func testACMEFinalize(t *testing.T, s store.Store) {
	mustAuthority(t, s, "root", "")
	mustAuthority(t, s, "tls", "root")
	if err := s.CreateACMEAccount(ctx, acmeAccount("a1", "tls", "k1"), audit.Event{}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateACMEOrder(ctx, acmeOrder("o1", "tls", "a1"), audit.Event{}); err != nil {
		t.Fatal(err)
	}
	read, err := s.ACMEOrder(ctx, "o1")
	if err != nil {
		t.Fatal(err)
	}
	before := len(events(t, s))
	var wg sync.WaitGroup
	errsOf := make([]error, 8)
	for i := range errsOf {
		wg.Go(func() {
			done := read
			done.Status = store.StatusValid
			c := cert(fmt.Sprintf("0f%02x", i), "tls", i)
			c.Rider = store.FinalizeOrder(done)
			errsOf[i] = s.RecordCertificate(ctx, c, audit.Event{Actor: "acme:a1"})
			if done.CertSerial != "" {
				t.Errorf("RecordCertificate wrote serial %s into the caller's order", done.CertSerial)
			}
		})
	}
	wg.Wait()
	var won []string
	for i, err := range errsOf {
		switch {
		case err == nil:
			won = append(won, fmt.Sprintf("0f%02x", i))
		default:
			wantKind(t, err, errs.Conflict, "a losing finalization")
		}
	}
	if len(won) != 1 {
		t.Fatalf("%d finalizations of one order recorded a certificate, want 1 (%v)", len(won), errsOf)
	}
	got, err := s.ACMEOrder(ctx, "o1")
	if err != nil || got.Status != store.StatusValid || got.CertSerial != won[0] || got.Version != read.Version+1 {
		t.Fatalf("order after finalize: %+v, %v (winner %s)", got, err, won[0])
	}
	certs, err := s.Certificates(ctx, store.Filter{Authority: "tls"})
	if err != nil || len(certs) != 1 || certs[0].Serial != won[0] {
		t.Fatalf("certificates after racing finalizations: %d, %v", len(certs), err)
	}
	if n := len(events(t, s)) - before; n != 1 {
		t.Fatalf("%d audit events for one recorded certificate", n)
	}
	checkChain(t, s)
}

// testReusableACMEOrders: the orders that hold an account's reusable
// authorizations are found by account, latest expiry first, until that
// expiry, and no more once the authorization is deactivated; pruning
// keeps them while they last.
func testReusableACMEOrders(t *testing.T, s store.Store) {
	mustAuthority(t, s, "root", "")
	mustAuthority(t, s, "tls", "root")
	for _, id := range []string{"a1", "a2"} {
		if err := s.CreateACMEAccount(ctx, acmeAccount(id, "tls", "k"+id), audit.Event{}); err != nil {
			t.Fatal(err)
		}
	}
	validated := func(id, account string, expires time.Time) store.ACMEOrder {
		o := acmeOrder(id, "tls", account)
		o.Authzs[0].Status, o.Authzs[0].Expires = store.StatusValid, expires
		o.Authzs[0].Challenges[0].Status, o.Authzs[0].Challenges[0].Validated = store.StatusValid, t0
		if err := s.CreateACMEOrder(ctx, o, audit.Event{}); err != nil {
			t.Fatal(err)
		}
		o.Version = 1
		return o
	}
	ids := func(now time.Time, limit int, names ...string) string {
		t.Helper()
		keys := []string{"dns:nothing.example.org"}
		for _, n := range names {
			keys = append(keys, "dns:"+n+".example.org")
		}
		got, err := s.ReusableACMEOrders(ctx, "a1", keys, now, limit)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, o := range got {
			out = append(out, o.ID)
		}
		return fmt.Sprint(out)
	}
	short := validated("short", "a1", t0.Add(2*time.Hour))
	long := validated("long", "a1", t0.Add(7*24*time.Hour))
	validated("other", "a2", t0.Add(7*24*time.Hour))
	other := acmeOrder("other2", "tls", "a2")
	other.Authzs[0].Identifier.Value = "long.example.org"
	if err := s.CreateACMEOrder(ctx, other, audit.Event{}); err != nil {
		t.Fatal(err)
	}
	// A pending authorization and a reused one offer nothing.
	pending := acmeOrder("pending", "tls", "a1")
	pending.Authzs[0].Identifier.Value = "long.example.org"
	if err := s.CreateACMEOrder(ctx, pending, audit.Event{}); err != nil {
		t.Fatal(err)
	}
	copied := acmeOrder("copy", "tls", "a1")
	copied.Authzs[0] = long.Authzs[0]
	copied.Authzs[0].Reused = "long/0"
	if err := s.CreateACMEOrder(ctx, copied, audit.Event{}); err != nil {
		t.Fatal(err)
	}
	if got := ids(t0, 10, "long", "short"); got != "[short long]" {
		t.Fatalf("reusable orders of a1 now: %s, want [short long]", got)
	}
	if got := ids(t0, 10, "short"); got != "[short]" {
		t.Fatalf("reusable orders of a1 for short: %s, want [short]", got)
	}
	if got := ids(t0, 1, "long", "short"); got != "[short]" {
		t.Fatalf("the first reusable order of a1: %s, want [short]", got)
	}
	if got := ids(t0.Add(3*time.Hour), 10, "long", "short"); got != "[long]" {
		t.Fatalf("reusable orders of a1 in 3h: %s, want [long]", got)
	}
	got, err := s.ReusableACMEOrders(ctx, "a1", []string{"dns:short.example.org"}, t0, 10)
	if err != nil || len(got) != 1 || !got[0].Authzs[0].Expires.Equal(short.Authzs[0].Expires) || got[0].Authzs[0].Status != store.StatusValid {
		t.Fatalf("a reusable authorization reads back as %+v, %v", got, err)
	}
	// Past its order's expiry and a lifetime more, a reusable order stays.
	if _, err := s.DeleteStaleACMEOrders(ctx, t0.Add(3*time.Hour), 100); err != nil {
		t.Fatal(err)
	}
	if got := ids(t0, 10, "long", "short"); got != "[long]" {
		t.Fatalf("after pruning at 3h: %s, want [long]", got)
	}
	long.Authzs[0].Status = store.StatusDeactivated
	if err := s.UpdateACMEOrder(ctx, long, audit.Event{Kind: audit.KindACMEAuthzDeactivate}); err != nil {
		t.Fatal(err)
	}
	if got := ids(t0, 10, "long", "short"); got != "[]" {
		t.Fatalf("after deactivation: %s, want none", got)
	}
}
