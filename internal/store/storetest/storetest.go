// Package storetest is the conformance suite every store backend must pass:
// the behaviour store.Store promises, checked the same way for SQLite and
// PostgreSQL, including the audit chain and concurrent group-committed writes.
package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
)

// Run runs the suite. open must return a new, empty store for each call and
// close it when the test ends (t.Cleanup).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		run  func(t *testing.T, s store.Store)
	}{
		{"Authorities", testAuthorities},
		{"ChangeAuthority", testChangeAuthority},
		{"Certificates", testCertificates},
		{"FilterAndPagination", testFilter},
		{"Revoke", testRevoke},
		{"Events", testEvents},
		{"EventsSince", testEventsSince},
		{"Concurrent", testConcurrent},
		{"Statuses", testStatuses},
		{"StatusLookups", testStatusLookups},
		{"CRLNumbers", testCRLNumbers},
		{"RevocationFields", testRevocationFields},
		{"SSHKeys", testSSHKeys},
		{"SSHCertificates", testSSHCertificates},
		{"ACMEAccounts", testACMEAccounts},
		{"ACMEAccountRaces", testACMEAccountRaces},
		{"ACMEOrders", testACMEOrders},
		{"ReusableACMEOrders", testReusableACMEOrders},
		{"ACMEFinalize", testACMEFinalize},
		{"ACMEEAB", testACMEEAB},
		{"Secret", testSecret},
		{"SetKeyURI", testSetKeyURI},
		{"Published", testPublished},
		{"ConsoleSessions", testConsoleSessions},
		{"Counts", testCounts},
		{"EndpointChecks", testEndpointChecks},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t)
			tt.run(t, s)
			// Whatever the test wrote, every row is as the newest event
			// that records it says.
			if rep, err := audit.Verify(ctx, s); err != nil || rep.RowProblemCount != 0 {
				t.Errorf("audit.Verify after the test: %v, row problems %v", err, rep.RowProblems)
			}
		})
	}
}

var (
	ctx = context.Background()
	// t0 has nanoseconds and a zone, to check both survive the round trip.
	t0 = time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.FixedZone("CET", 3600))
)

func wantKind(t *testing.T, err error, k errs.Kind, what string) {
	t.Helper()
	if errs.KindOf(err) != k || err == nil {
		t.Errorf("%s: error %v, want kind %v", what, err, k)
	}
}

func mustAuthority(t *testing.T, s store.Store, name, parent string) store.Authority {
	t.Helper()
	a := store.Authority{
		Name: name, Purpose: "tls-server", Parent: parent, KeyURI: "pkcs11:token=ca;object=" + name,
		CertDER: []byte("cert of " + name), Policy: json.RawMessage(`{"dns":["example.org"]}`),
		DefaultValidity: 30 * 24 * time.Hour, MaxValidity: 90 * 24 * time.Hour, CreatedAt: t0,
	}
	if err := s.CreateAuthority(ctx, a, audit.Event{Actor: "cli"}); err != nil {
		t.Fatalf("create authority %s: %v", name, err)
	}
	return a
}

// cert returns a certificate of authority a expiring i hours after t0.
func cert(serial, authority string, i int) store.Certificate {
	return store.Certificate{
		Serial: serial, Authority: authority, Subject: "CN=" + serial + ".example.org",
		DNSNames:    []string{serial + ".example.org", "www." + serial + ".example.org"},
		IPAddresses: []string{"192.0.2.1"}, EmailAddresses: []string{"admin@example.org"},
		NotBefore: t0, NotAfter: t0.Add(time.Duration(i) * time.Hour), Status: store.Valid,
		Requester: "api:test", DER: bytes.Repeat([]byte{0x30, byte(i)}, 300),
	}
}

func mustRecord(t *testing.T, s store.Store, c store.Certificate) {
	t.Helper()
	if err := s.RecordCertificate(ctx, c, audit.Event{Actor: "api:test"}); err != nil {
		t.Fatalf("record %s: %v", c.Serial, err)
	}
}

func events(t *testing.T, s store.Store) []audit.Event {
	t.Helper()
	var out []audit.Event
	if err := s.Events(ctx, func(e audit.Event) error { out = append(out, e); return nil }); err != nil {
		t.Fatalf("events: %v", err)
	}
	return out
}

// checkChain checks what every test's log must satisfy, and that
// audit.Verify agrees.
func checkChain(t *testing.T, s store.Store) []audit.Event {
	t.Helper()
	evs := events(t, s)
	prev := audit.Genesis
	for i, e := range evs {
		if e.Seq != int64(i+1) || !bytes.Equal(e.Prev, prev) || !e.Sealed() {
			t.Fatalf("event %d: seq %d, prev %x (want %x), sealed %v", i+1, e.Seq, e.Prev, prev, e.Sealed())
		}
		if e.Time.IsZero() || e.Time.Location() != time.UTC {
			t.Errorf("event %d: time %v, want set and UTC", e.Seq, e.Time)
		}
		prev = e.Hash
	}
	rep, err := audit.Verify(ctx, s)
	if err != nil || rep.Events != int64(len(evs)) || !bytes.Equal(rep.Head, prev) {
		t.Fatalf("audit.Verify: %+v, %v; want %d events and head %x", rep, err, len(evs), prev)
	}
	return evs
}

func sameAuthority(t *testing.T, got, want store.Authority) {
	t.Helper()
	ok := got.Name == want.Name && got.Purpose == want.Purpose && got.Parent == want.Parent && got.KeyURI == want.KeyURI &&
		bytes.Equal(got.CertDER, want.CertDER) && bytes.Equal(got.Policy, want.Policy) &&
		got.DefaultValidity == want.DefaultValidity && got.MaxValidity == want.MaxValidity && got.CreatedAt.Equal(want.CreatedAt) &&
		got.ACME == want.ACME && got.RequireEAB == want.RequireEAB
	if !ok {
		t.Errorf("authority\n got %+v\nwant %+v", got, want)
	}
}

func sameCertificate(t *testing.T, got, want store.Certificate) {
	t.Helper()
	ok := got.Serial == want.Serial && got.Authority == want.Authority && got.Subject == want.Subject &&
		slices.Equal(got.DNSNames, want.DNSNames) && slices.Equal(got.IPAddresses, want.IPAddresses) &&
		slices.Equal(got.EmailAddresses, want.EmailAddresses) &&
		got.NotBefore.Equal(want.NotBefore) && got.NotAfter.Equal(want.NotAfter) && got.Status == want.Status &&
		got.RevokedAt.Equal(want.RevokedAt) && got.RevocationReason == want.RevocationReason &&
		got.Requester == want.Requester && bytes.Equal(got.DER, want.DER)
	if !ok {
		t.Errorf("certificate\n got %+v\nwant %+v", got, want)
	}
}

func testAuthorities(t *testing.T, s store.Store) {
	root := mustAuthority(t, s, "root", "")
	child := mustAuthority(t, s, "vpn", "root")
	got, err := s.Authority(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	sameAuthority(t, got, root)
	all, err := s.Authorities(ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("Authorities: %d, %v", len(all), err)
	}
	sameAuthority(t, all[0], root)
	sameAuthority(t, all[1], child)

	err = s.CreateAuthority(ctx, store.Authority{Name: "root", KeyURI: "x"}, audit.Event{Actor: "cli"})
	wantKind(t, err, errs.Conflict, "duplicate authority")
	err = s.CreateAuthority(ctx, store.Authority{Name: "orphan", Parent: "nope"}, audit.Event{Actor: "cli"})
	wantKind(t, err, errs.NotFound, "missing parent")
	err = s.CreateAuthority(ctx, store.Authority{}, audit.Event{Actor: "cli"})
	wantKind(t, err, errs.Malformed, "no name")
	_, err = s.Authority(ctx, "nope")
	wantKind(t, err, errs.NotFound, "unknown authority")
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("errors.Is(%v, store.ErrNotFound) is false", err)
	}

	// Refused writes leave no event behind.
	evs := checkChain(t, s)
	if len(evs) != 2 || evs[0].Kind != audit.KindAuthorityCreate || evs[0].Subject != "root" || evs[0].Authority != "root" ||
		evs[1].Subject != "vpn" || evs[1].Actor != "cli" {
		t.Errorf("events %+v", evs)
	}
}

func testChangeAuthority(t *testing.T, s store.Store) {
	mustAuthority(t, s, "root", "")
	a := store.Authority{Name: "web", Purpose: "tls-server", Parent: "root", KeyURI: "file:web.key", CreatedAt: t0, ACME: true}
	if err := s.CreateAuthority(ctx, a, audit.Event{Actor: "cli"}); err != nil {
		t.Fatal(err)
	}
	settings := func(name string) (acme, eab bool) {
		t.Helper()
		got, err := s.Authority(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return got.ACME, got.RequireEAB
	}
	if acme, eab := settings("web"); !acme || eab {
		t.Fatalf("created with ACME on: acme %v, require_eab %v", acme, eab)
	}
	if acme, eab := settings("root"); acme || eab {
		t.Fatalf("created with the zero settings: acme %v, require_eab %v", acme, eab)
	}
	on, off := true, false
	// Each change sets only what it names.
	if err := s.ChangeAuthority(ctx, "web", store.AuthorityChange{RequireEAB: &on}, audit.Event{Actor: "cli", Data: json.RawMessage(`{"require_eab":true}`)}); err != nil {
		t.Fatal(err)
	}
	if acme, eab := settings("web"); !acme || !eab {
		t.Errorf("after require_eab on: acme %v, require_eab %v", acme, eab)
	}
	if err := s.ChangeAuthority(ctx, "web", store.AuthorityChange{ACME: &off}, audit.Event{Actor: "cli"}); err != nil {
		t.Fatal(err)
	}
	if acme, eab := settings("web"); acme || !eab {
		t.Errorf("after acme off: acme %v, require_eab %v", acme, eab)
	}
	all, err := s.Authorities(ctx)
	if err != nil || len(all) != 2 || all[1].ACME || !all[1].RequireEAB {
		t.Errorf("Authorities: %+v, %v", all, err)
	}
	// In service from creation; out and back in, the other settings kept.
	for _, enabled := range []bool{false, true} {
		if err := s.ChangeAuthority(ctx, "web", store.AuthorityChange{Enabled: &enabled}, audit.Event{Actor: "cli"}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Authority(ctx, "web")
		if err != nil || got.Disabled == enabled || got.ACME || !got.RequireEAB {
			t.Errorf("after enabled=%v: %+v, %v", enabled, got, err)
		}
	}

	wantKind(t, s.ChangeAuthority(ctx, "nope", store.AuthorityChange{ACME: &on}, audit.Event{Actor: "cli"}), errs.NotFound, "change of an unknown authority")
	wantKind(t, s.ChangeAuthority(ctx, "web", store.AuthorityChange{}, audit.Event{Actor: "cli"}), errs.Malformed, "empty change")
	wantKind(t, s.AppendEvent(ctx, audit.Event{Kind: audit.KindAuthorityUpdate, Actor: "cli"}), errs.Malformed, "authority.update appended alone")

	evs := checkChain(t, s)
	if len(evs) != 6 {
		t.Fatalf("%d events, want 2 creations and 4 changes: %+v", len(evs), evs)
	}
	for _, e := range evs[2:] {
		if e.Kind != audit.KindAuthorityUpdate || e.Subject != "web" || e.Authority != "web" || e.Actor != "cli" {
			t.Errorf("change event %+v", e)
		}
	}
	if string(evs[2].Data) != `{"require_eab":true}` {
		t.Errorf("change event data %s", evs[2].Data)
	}
}

func testCertificates(t *testing.T, s store.Store) {
	mustAuthority(t, s, "tls", "")
	c := cert("0a1b2c", "tls", 1)
	mustRecord(t, s, c)
	got, err := s.Certificate(ctx, c.Serial)
	if err != nil {
		t.Fatal(err)
	}
	sameCertificate(t, got, c)
	// A certificate without names or status comes back valid, without names.
	bare := store.Certificate{Serial: "ff", Authority: "tls", NotBefore: t0, NotAfter: t0.Add(time.Hour), DER: []byte{0x30}}
	mustRecord(t, s, bare)
	if got, err := s.Certificate(ctx, "ff"); err != nil || got.Status != store.Valid || len(got.DNSNames) != 0 {
		t.Errorf("bare certificate: %+v, %v", got, err)
	}

	_, err = s.Certificate(ctx, "abcdef")
	wantKind(t, err, errs.NotFound, "unknown serial")
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("errors.Is(%v, store.ErrNotFound) is false", err)
	}
	wantKind(t, s.RecordCertificate(ctx, c, audit.Event{Actor: "x"}), errs.Conflict, "duplicate serial")
	wantKind(t, s.RecordCertificate(ctx, cert("0b", "nope", 1), audit.Event{Actor: "x"}), errs.NotFound, "unknown authority")
	wantKind(t, s.RecordCertificate(ctx, cert("0A:1B", "tls", 1), audit.Event{Actor: "x"}), errs.Malformed, "bad serial")
	wantKind(t, s.RecordCertificate(ctx, cert("0c", "tls", 1), audit.Event{Kind: audit.KindCertificateRevoke}), errs.Malformed, "wrong event kind")
	wantKind(t, s.RecordCertificate(ctx, cert("0d", "tls", 1), audit.Event{Subject: "0e"}), errs.Malformed, "event names another certificate")

	evs := checkChain(t, s)
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3", len(evs))
	}
	if e := evs[1]; e.Kind != audit.KindCertificateIssue || e.Subject != c.Serial || e.Authority != "tls" || e.Actor != "api:test" {
		t.Errorf("issue event %+v", e)
	}
}

func testFilter(t *testing.T, s store.Store) {
	mustAuthority(t, s, "a", "")
	mustAuthority(t, s, "b", "")
	var all []store.Certificate
	var internal store.Certificate
	for i := range 30 {
		// Pairs share a not_after, so the serial must break the tie; serials
		// are not in not_after order.
		c := cert(fmt.Sprintf("%02x", 255-i), string(rune('a'+i%2)), 1+i/2)
		if i == 7 {
			c.DNSNames = append(c.DNSNames, "shared.example.org")
		}
		if i == 9 {
			c.Subject, c.Internal = "CN=OCSP 100%_a", true
			internal = c
		}
		mustRecord(t, s, c)
		all = append(all, c)
	}
	if err := s.Revoke(ctx, all[3].Serial, t0, 1, audit.Event{Actor: "cli"}); err != nil {
		t.Fatal(err)
	}
	all[3].Status = store.Revoked
	slices.SortFunc(all, func(x, y store.Certificate) int {
		if c := x.NotAfter.Compare(y.NotAfter); c != 0 {
			return c
		}
		return bytes.Compare([]byte(x.Serial), []byte(y.Serial))
	})
	pick := func(keep func(store.Certificate) bool) []string {
		var out []string
		for _, c := range all {
			if keep(c) {
				out = append(out, c.Serial)
			}
		}
		return out
	}
	cut := t0.Add(5 * time.Hour)
	everything := pick(func(store.Certificate) bool { return true })
	all = slices.DeleteFunc(all, func(c store.Certificate) bool { return c.Internal })
	tests := []struct {
		name string
		f    store.Filter
		want []string
	}{
		{"all", store.Filter{}, pick(func(store.Certificate) bool { return true })},
		{"with internal", store.Filter{WithInternal: true}, everything},
		{"name contains", store.Filter{NameContains: "WWW.F"}, pick(func(c store.Certificate) bool { return c.Serial[0] == 'f' })},
		{"subject contains, wildcards taken literally", store.Filter{NameContains: "100%_", WithInternal: true}, []string{internal.Serial}},
		{"wildcards match nothing else", store.Filter{NameContains: "%"}, nil},
		{"authority", store.Filter{Authority: "b"}, pick(func(c store.Certificate) bool { return c.Authority == "b" })},
		{"revoked", store.Filter{Status: store.Revoked}, pick(func(c store.Certificate) bool { return c.Status == store.Revoked })},
		{"valid of a", store.Filter{Authority: "a", Status: store.Valid}, pick(func(c store.Certificate) bool {
			return c.Authority == "a" && c.Status == store.Valid
		})},
		{"expiring before", store.Filter{NotAfterBefore: cut}, pick(func(c store.Certificate) bool { return c.NotAfter.Before(cut) })},
		{"not expired", store.Filter{NotAfterAfter: cut}, pick(func(c store.Certificate) bool { return c.NotAfter.After(cut) })},
		{"window", store.Filter{NotAfterAfter: t0.Add(2 * time.Hour), NotAfterBefore: cut}, pick(func(c store.Certificate) bool {
			return c.NotAfter.After(t0.Add(2*time.Hour)) && c.NotAfter.Before(cut)
		})},
		{"by name", store.Filter{Name: "shared.example.org"}, []string{fmt.Sprintf("%02x", 255-7)}},
		{"by name everywhere", store.Filter{Name: "admin@example.org", Limit: 100}, pick(func(store.Certificate) bool { return true })},
		{"limit", store.Filter{Limit: 4}, pick(func(store.Certificate) bool { return true })[:4]},
		{"no match", store.Filter{Authority: "none"}, nil},
	}
	for _, tt := range tests {
		got, err := s.Certificates(ctx, tt.f)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var serials []string
		for _, c := range got {
			serials = append(serials, c.Serial)
		}
		if !slices.Equal(serials, tt.want) {
			t.Errorf("%s:\n got %v\nwant %v", tt.name, serials, tt.want)
		}
	}
	// A full row comes back through a list too.
	got, err := s.Certificates(ctx, store.Filter{Limit: 1})
	if err != nil || len(got) != 1 {
		t.Fatalf("list of one: %d certificates, %v", len(got), err)
	}
	sameCertificate(t, got[0], all[0])

	// Keyset pagination visits every certificate once, in order.
	var pages []string
	f := store.Filter{Authority: "a", Limit: 4}
	for range 20 {
		page, err := s.Certificates(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, c := range page {
			pages = append(pages, c.Serial)
		}
		f.AfterSerial = page[len(page)-1].Serial
	}
	if want := pick(func(c store.Certificate) bool { return c.Authority == "a" }); !slices.Equal(pages, want) {
		t.Errorf("paginated:\n got %v\nwant %v", pages, want)
	}
	_, err = s.Certificates(ctx, store.Filter{AfterSerial: "abcdef"})
	wantKind(t, err, errs.NotFound, "unknown cursor")
}

func testRevoke(t *testing.T, s store.Store) {
	mustAuthority(t, s, "vpn", "")
	c := cert("77", "vpn", 10)
	mustRecord(t, s, c)
	at := t0.Add(time.Minute)
	if err := s.Revoke(ctx, c.Serial, at, 1, audit.Event{Actor: "cli", Data: json.RawMessage(`{"by": "admin"}`)}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Certificate(ctx, c.Serial)
	if err != nil {
		t.Fatal(err)
	}
	c.Status, c.RevokedAt, c.RevocationReason = store.Revoked, at, 1
	sameCertificate(t, got, c)

	wantKind(t, s.Revoke(ctx, c.Serial, at, 1, audit.Event{Actor: "cli"}), errs.Conflict, "revoked twice")
	wantKind(t, s.Revoke(ctx, "78", at, 1, audit.Event{Actor: "cli"}), errs.NotFound, "unknown serial")
	mustRecord(t, s, cert("79", "vpn", 10))
	wantKind(t, s.Revoke(ctx, "79", at, 7, audit.Event{Actor: "cli"}), errs.Malformed, "reason 7")
	if got, _ := s.Certificate(ctx, "79"); got.Status != store.Valid {
		t.Errorf("refused revocation changed status to %q", got.Status)
	}

	evs := checkChain(t, s)
	if len(evs) != 4 {
		t.Fatalf("%d events, want 4", len(evs))
	}
	if e := evs[2]; e.Kind != audit.KindCertificateRevoke || e.Subject != "77" || e.Authority != "vpn" || string(e.Data) != `{"by":"admin"}` {
		t.Errorf("revoke event %+v", e)
	}
}

func testEvents(t *testing.T, s store.Store) {
	when := time.Date(2024, 12, 31, 23, 59, 59, 999999999, time.UTC)
	if err := s.AppendEvent(ctx, audit.Event{Kind: audit.KindKeyGenerate, Actor: "cli", Subject: "pkcs11:object=k",
		Time: when, Data: json.RawMessage("{ \"alg\" : \"ES256\" }")}); err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Minute)
	if err := s.AppendEvent(ctx, audit.Event{Kind: "note", Actor: "cli"}); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.AppendEvent(ctx, audit.Event{Kind: "note", Data: json.RawMessage("{")}), errs.Malformed, "data not JSON")
	wantKind(t, s.AppendEvent(ctx, audit.Event{Actor: "cli"}), errs.Malformed, "no kind")
	wantKind(t, s.AppendEvent(ctx, audit.Event{Kind: audit.KindCertificateIssue, Subject: "01"}), errs.Malformed, "forged issue event")

	evs := checkChain(t, s)
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2", len(evs))
	}
	if e := evs[0]; !e.Time.Equal(when) || string(e.Data) != `{"alg":"ES256"}` || e.Subject != "pkcs11:object=k" {
		t.Errorf("event 1 %+v", e)
	}
	if e := evs[1]; e.Time.Before(before) || e.Data != nil {
		t.Errorf("event 2: time %v not filled in by the store, or data %q", e.Time, e.Data)
	}
	// Events stops with the callback's error.
	stop := errors.New("stop")
	n := 0
	if err := s.Events(ctx, func(audit.Event) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("Events after a failing callback: %v after %d calls", err, n)
	}
}

// testEventsSince lists events by time over a log whose times are not in
// seq order (as several PostgreSQL nodes write it): whichever way the store
// reads them (by time or by seq), it returns exactly the events at or after
// since (and before until, after a cursor, of a kind), the first in seq
// order.
func testEventsSince(t *testing.T, s store.Store) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 60 {
		at := base.Add(time.Duration(i) * time.Minute)
		switch {
		case i%7 == 3: // late writers: an event older than those before it
			at = at.Add(-20 * time.Minute)
		case i%11 == 5: // and a clock ahead
			at = at.Add(9 * time.Minute)
		}
		kind := "note"
		if i%3 == 0 {
			kind = "other"
		}
		if err := s.AppendEvent(ctx, audit.Event{Kind: kind, Actor: "cli", Time: at}); err != nil {
			t.Fatal(err)
		}
	}
	all := events(t, s)
	minute := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }
	for _, f := range []store.EventFilter{
		{Since: minute(55), Limit: 5}, // near the end: few events after since
		{Since: minute(2), Limit: 5},  // near the start: most are after it
		{Since: minute(30), Limit: 100},
		{Since: minute(45)},
		{Since: minute(70)}, // none
		{Since: minute(50), AfterSeq: all[40].Seq, Limit: 3},
		{Since: minute(5), AfterSeq: all[50].Seq},
		{Since: minute(20), Until: minute(40), Limit: 10},
		{Since: minute(40), Kind: "other", Limit: 4},
		{Since: minute(1), Kind: "other", Limit: 2},
	} {
		var want []int64
		for _, e := range all {
			if !e.Time.Before(f.Since) && (f.Until.IsZero() || e.Time.Before(f.Until)) && e.Seq > f.AfterSeq &&
				(f.Kind == "" || e.Kind == f.Kind) && (f.Limit == 0 || len(want) < f.Limit) {
				want = append(want, e.Seq)
			}
		}
		got, err := s.AuditEvents(ctx, f)
		var seqs []int64
		for _, e := range got {
			seqs = append(seqs, e.Seq)
		}
		if err != nil || !slices.Equal(seqs, want) {
			t.Errorf("events since %v (until %v, after %d, kind %q, limit %d): %v, %v; want %v",
				f.Since.Sub(base), f.Until.Sub(base), f.AfterSeq, f.Kind, f.Limit, seqs, err, want)
		}
	}
}

// testConcurrent writes from many goroutines at once, with duplicates mixed
// in, so that a backend that batches puts failing and succeeding writes in
// the same transaction: each caller must get its own outcome.
func testConcurrent(t *testing.T, s store.Store) {
	mustAuthority(t, s, "ca", "")
	for i := range 5 {
		mustRecord(t, s, cert(fmt.Sprintf("d%d", i), "ca", 1))
	}
	const workers, each = 32, 20
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		ok      = map[string]int{}
		failed  = map[string]int{}
		badKind []error
		start   = make(chan struct{})
	)
	for w := range workers {
		wg.Go(func() {
			<-start
			for i := range each {
				serial := fmt.Sprintf("%02x%02x", w, i)
				switch {
				case i%7 == 3:
					serial = fmt.Sprintf("d%d", i%5) // recorded before
				case i%7 == 5:
					serial = fmt.Sprintf("e%d", i) // raced by every worker
				}
				err := s.RecordCertificate(ctx, cert(serial, "ca", 1+i), audit.Event{Actor: fmt.Sprintf("w%d", w)})
				mu.Lock()
				switch {
				case err == nil:
					ok[serial]++
				case errs.KindOf(err) == errs.Conflict:
					failed[serial]++
				default:
					badKind = append(badKind, err)
				}
				mu.Unlock()
			}
		})
	}
	// An auditor verifying while certificates are issued sees a consistent
	// log: no certificate without its event.
	verified := make(chan error, 1)
	stopVerify := make(chan struct{})
	go func() {
		for {
			select {
			case <-stopVerify:
				verified <- nil
				return
			default:
			}
			if _, err := audit.Verify(ctx, s); err != nil {
				verified <- err
				return
			}
		}
	}()
	close(start)
	wg.Wait()
	close(stopVerify)
	if err := <-verified; err != nil {
		t.Errorf("audit.Verify during concurrent writes: %v", err)
	}
	if len(badKind) > 0 {
		t.Fatalf("unexpected errors: %v", badKind)
	}
	for serial, n := range ok {
		if n != 1 || (serial[0] == 'd') {
			t.Errorf("%s recorded %d times", serial, n)
		}
	}
	for serial, n := range failed {
		if serial[0] != 'd' && serial[0] != 'e' {
			t.Errorf("unique serial %s failed %d times", serial, n)
		}
		if serial[0] == 'e' && (ok[serial] != 1 || n != workers-1) {
			t.Errorf("raced serial %s: %d successes, %d conflicts", serial, ok[serial], n)
		}
	}
	all, err := s.Certificates(ctx, store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if want := 5 + len(ok); len(all) != want {
		t.Errorf("%d certificates, want %d", len(all), want)
	}
	evs := checkChain(t, s)
	if want := 1 + 5 + len(ok); len(evs) != want {
		t.Errorf("%d events, want %d", len(evs), want)
	}
	rep, _ := audit.Verify(ctx, s)
	if rep.Certificates != int64(len(all)) {
		t.Errorf("Verify cross-checked %d certificates, want %d", rep.Certificates, len(all))
	}
}
