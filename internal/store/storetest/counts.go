package storetest

import (
	"cmp"
	"maps"
	"slices"
	"testing"
	"time"

	"signet/internal/audit"
	"signet/internal/store"
)

// testCounts: certificates by authority and status, valid ones expiring
// within each window (revoked and expired ones left out), orders by state
// (a pending one past its expiry is expired), the CRLs last published and
// the audit head, all by aggregate queries.
func testCounts(t *testing.T, s store.Store) {
	mustAuthority(t, s, "web", "")
	mustAuthority(t, s, "mail", "")
	now := t0
	record := func(serial, authority string, left time.Duration) store.Certificate {
		c := cert(serial, authority, 1)
		c.NotAfter = now.Add(left)
		mustRecord(t, s, c)
		return c
	}
	day := 24 * time.Hour
	record("01", "web", 12*time.Hour)
	record("02", "web", 3*day)
	record("03", "web", 20*day)
	revoked := record("04", "web", 20*day)
	record("05", "web", 60*day)
	record("06", "web", -day) // expired, still valid
	record("07", "mail", 5*day)
	if err := s.Revoke(ctx, revoked.Serial, now, 1, audit.Event{Actor: "api:test"}); err != nil {
		t.Fatal(err)
	}

	counts, err := s.CertificateCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(counts, func(a, b store.CertificateCount) int {
		return cmp.Or(cmp.Compare(a.Authority, b.Authority), cmp.Compare(a.Status, b.Status))
	})
	want := []store.CertificateCount{{Authority: "mail", Status: "valid", Count: 1}, {Authority: "web", Status: "revoked", Count: 1}, {Authority: "web", Status: "valid", Count: 5}}
	if !slices.Equal(counts, want) {
		t.Errorf("certificate counts: %v, want %v", counts, want)
	}

	// Per day from now's UTC day: the valid certificates not yet expired
	// (not 04, revoked, nor 06, expired).
	per, err := s.ExpiringPerDay(ctx, now, 90)
	if err != nil {
		t.Fatal(err)
	}
	midnight := now.UTC().Truncate(day)
	wantPer := make([]int64, 90)
	for _, left := range []time.Duration{12 * time.Hour, 3 * day, 20 * day, 60 * day, 5 * day} {
		wantPer[now.Add(left).Sub(midnight)/day]++
	}
	if !slices.Equal(per, wantPer) {
		t.Errorf("expiring per day: %v, want %v", per, wantPer)
	}

	if err := s.CreateACMEAccount(ctx, acmeAccount("a1", "web", "k1"), audit.Event{Actor: "acme"}); err != nil {
		t.Fatal(err)
	}
	live, stale, done := acmeOrder("o1", "web", "a1"), acmeOrder("o2", "web", "a1"), acmeOrder("o3", "web", "a1")
	ready, staleReady := acmeOrder("o4", "web", "a1"), acmeOrder("o5", "web", "a1")
	live.Expires, stale.Expires, done.Expires = now.Add(time.Hour), now.Add(-time.Minute), now.Add(time.Hour)
	ready.Expires, staleReady.Expires = now.Add(time.Hour), now.Add(-time.Minute)
	done.Status, ready.Status, staleReady.Status = store.StatusValid, store.StatusReady, store.StatusReady
	for _, o := range []store.ACMEOrder{live, stale, done, ready, staleReady} {
		if err := s.CreateACMEOrder(ctx, o, audit.Event{Actor: "acme:a1"}); err != nil {
			t.Fatal(err)
		}
	}
	if p, ok := s.(store.Published); ok {
		docs := []store.RevocationDoc{
			{Kind: "crl", Authority: "web", Shard: 0, DER: []byte("shard zero"), ThisUpdate: now.Add(-time.Hour), NextUpdate: now.Add(23 * time.Hour)},
			{Kind: "crl", Authority: "web", Shard: -1, DER: []byte("whole"), ThisUpdate: now, NextUpdate: now.Add(day)},
		}
		if err := p.PublishRevocation(ctx, docs); err != nil {
			t.Fatal(err)
		}
	}

	c, err := s.Census(ctx, now, []time.Duration{day, 7 * day, 30 * day})
	if err != nil {
		t.Fatal(err)
	}
	expiring := map[string]map[time.Duration]int64{}
	for _, e := range c.Expiring {
		if expiring[e.Authority] == nil {
			expiring[e.Authority] = map[time.Duration]int64{}
		}
		expiring[e.Authority][e.Within] = e.Count
	}
	for a, w := range map[string]map[time.Duration]int64{"web": {day: 1, 7 * day: 2, 30 * day: 3}, "mail": {day: 0, 7 * day: 1, 30 * day: 1}} {
		for d, n := range w {
			if got := expiring[a][d]; got != n {
				t.Errorf("%s: %v expiring within %v, want %v", a, got, d, n)
			}
		}
	}
	orders := map[string]int64{}
	for _, o := range c.Orders {
		orders[o.Authority+" "+o.State] = o.Count
	}
	if want := map[string]int64{"web pending": 1, "web ready": 1, "web expired": 2, "web valid": 1}; !maps.Equal(orders, want) {
		t.Errorf("orders by state: %v, want %v", orders, want)
	}
	if _, ok := s.(store.Published); ok {
		crls := map[int]store.CRLInfo{}
		for _, l := range c.CRLs {
			crls[l.Shard] = l
		}
		if z, w := crls[0], crls[-1]; len(crls) != 2 || z.Size != int64(len("shard zero")) || !z.ThisUpdate.Equal(now.Add(-time.Hour)) ||
			!z.NextUpdate.Equal(now.Add(23*time.Hour)) || w.Size != int64(len("whole")) || w.Authority != "web" {
			t.Errorf("published CRLs: %+v", c.CRLs)
		}
	}
	ev := events(t, s)
	if head := ev[len(ev)-1].Seq; c.AuditHead != head {
		t.Errorf("audit head %d, want %d", c.AuditHead, head)
	}

	// The edges: a certificate expiring at now has expired; one at a
	// midnight counts on the day that midnight begins.
	mustAuthority(t, s, "edge", "")
	record("e1", "edge", 0)
	record("e2", "edge", midnight.Add(2*day).Sub(now))
	record("e3", "edge", midnight.Add(90*day).Sub(now)) // beyond the 90 days
	wantPer[2]++
	if per, err = s.ExpiringPerDay(ctx, now, 90); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(per, wantPer) {
		t.Errorf("expiring per day, with the edges: %v, want %v", per, wantPer)
	}
}
