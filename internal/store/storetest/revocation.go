package storetest

import (
	"maps"
	"slices"
	"testing"
	"time"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
)

// testRevocationFields: an authority's base URL and shard count, and a
// certificate's shard, survive the round trip; shard counts are bounded.
func testRevocationFields(t *testing.T, s store.Store) {
	a := store.Authority{Name: "sharded", Purpose: "tls-server", KeyURI: "file:k", CertDER: []byte("c"),
		BaseURL: "http://crl.example.org:8080", Shards: 16, CreatedAt: t0}
	if err := s.CreateAuthority(ctx, a, audit.Event{Actor: "cli"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Authority(ctx, "sharded")
	if err != nil || got.BaseURL != a.BaseURL || got.Shards != 16 {
		t.Errorf("authority: %+v, %v; want base URL %q and 16 shards", got, err, a.BaseURL)
	}
	plain := mustAuthority(t, s, "plain", "")
	if got, _ := s.Authority(ctx, plain.Name); got.Shards != 1 || got.BaseURL != "" {
		t.Errorf("authority without shards: %d shards, base URL %q; want 1 and empty", got.Shards, got.BaseURL)
	}
	bad := a
	bad.Name, bad.Shards = "toomany", store.MaxShards+1
	wantKind(t, s.CreateAuthority(ctx, bad, audit.Event{Actor: "cli"}), errs.Malformed, "too many shards")

	c := cert("5a", "sharded", 1)
	c.Shard = 11
	mustRecord(t, s, c)
	if got, err := s.Certificate(ctx, "5a"); err != nil || got.Shard != 11 {
		t.Errorf("certificate shard %d, %v; want 11", got.Shard, err)
	}
	c = cert("5b", "sharded", 1)
	c.Shard = -1
	wantKind(t, s.RecordCertificate(ctx, c, audit.Event{Actor: "x"}), errs.Malformed, "negative shard")
}

// testStatuses: the status feed returns what changed after a seq, from one
// snapshot, and a server following its head sees every later change once.
func testStatuses(t *testing.T, s store.Store) {
	mustAuthority(t, s, "a", "")
	collect := func(after int64, notAfterAfter time.Time) (map[string]store.CertStatus, int64) {
		t.Helper()
		got := map[string]store.CertStatus{}
		head, err := s.Statuses(ctx, store.StatusQuery{AfterSeq: after, NotAfterAfter: notAfterAfter}, func(c store.CertStatus) error {
			if prev, ok := got[c.Serial]; ok && prev != c {
				t.Errorf("%s passed twice, differently: %+v then %+v", c.Serial, prev, c)
			}
			got[c.Serial] = c
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got, head
	}
	empty, head0 := collect(0, time.Time{})
	if len(empty) != 0 || head0 != 1 { // the authority's event
		t.Fatalf("no certificates yet: got %v, head %d; want none, head 1", empty, head0)
	}
	for i, serial := range []string{"01", "02", "03"} {
		c := cert(serial, "a", 10*(i+1)) // expiring t0+10h, +20h, +30h
		c.Shard = i
		mustRecord(t, s, c)
	}
	if err := s.Revoke(ctx, "02", t0.Add(time.Minute), 1, audit.Event{Actor: "cli"}); err != nil {
		t.Fatal(err)
	}
	all, head := collect(head0, time.Time{})
	if head != head0+4 || len(all) != 3 {
		t.Fatalf("after 3 issues and a revocation: head %d, %d statuses %v", head, len(all), all)
	}
	want := store.CertStatus{Serial: "02", Authority: "a", Shard: 1, NotAfter: t0.Add(20 * time.Hour),
		Revoked: true, RevokedAt: t0.Add(time.Minute), Reason: 1}
	if got := all["02"]; !got.NotAfter.Equal(want.NotAfter) || !got.RevokedAt.Equal(want.RevokedAt) ||
		got.Serial != want.Serial || got.Authority != want.Authority || got.Shard != want.Shard || !got.Revoked || got.Reason != 1 {
		t.Errorf("revoked status %+v, want %+v", got, want)
	}
	if got := all["03"]; got.Revoked || !got.RevokedAt.IsZero() || got.Shard != 2 {
		t.Errorf("valid status %+v", got)
	}
	// Expired certificates are left out when asked.
	fresh, _ := collect(head0, t0.Add(15*time.Hour))
	if keys := mapKeys(fresh); !slices.Equal(keys, []string{"02", "03"}) {
		t.Errorf("not expired by t0+15h: %v, want [02 03]", keys)
	}
	// Nothing new: nothing returned, same head.
	if none, h := collect(head, time.Time{}); len(none) != 0 || h != head {
		t.Errorf("no change: %v, head %d (want %d)", none, h, head)
	}
	// A revocation after the head is seen by the next call, alone.
	if err := s.Revoke(ctx, "03", t0.Add(2*time.Minute), 4, audit.Event{Actor: "cli"}); err != nil {
		t.Fatal(err)
	}
	next, head2 := collect(head, time.Time{})
	if got := next["03"]; len(next) != 1 || !got.Revoked || got.Reason != 4 || head2 != head+1 {
		t.Errorf("after revoking 03: %v, head %d", next, head2)
	}
	// Events that are not issuance or revocation move the head only.
	if err := s.AppendEvent(ctx, audit.Event{Kind: "key.generate", Actor: "cli", Subject: "file:k"}); err != nil {
		t.Fatal(err)
	}
	if none, h := collect(head2, time.Time{}); len(none) != 0 || h != head2+1 {
		t.Errorf("after an unrelated event: %v, head %d (want %d)", none, h, head2+1)
	}
	// Revoked only, one authority.
	mustAuthority(t, s, "b", "")
	other := cert("0b", "b", 40)
	mustRecord(t, s, other)
	if err := s.Revoke(ctx, "0b", t0, 0, audit.Event{Actor: "cli"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		q    store.StatusQuery
		want []string
	}{
		{store.StatusQuery{RevokedOnly: true}, []string{"02", "03", "0b"}},
		{store.StatusQuery{RevokedOnly: true, Authority: "a"}, []string{"02", "03"}},
		{store.StatusQuery{Authority: "a"}, []string{"01", "02", "03"}},
		{store.StatusQuery{Authority: "b"}, []string{"0b"}},
	} {
		var got []string
		if _, err := s.Statuses(ctx, tc.q, func(c store.CertStatus) error { got = append(got, c.Serial); return nil }); err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.q, got, tc.want)
		}
	}
}

// testStatusLookups: one certificate's status by serial, and an
// authority's live certificates page by page in serial order.
func testStatusLookups(t *testing.T, s store.Store) {
	mustAuthority(t, s, "a", "")
	mustAuthority(t, s, "b", "")
	for i, serial := range []string{"05", "01", "04", "02", "03"} {
		mustRecord(t, s, cert(serial, "a", 10*(i+1)))
	}
	mustRecord(t, s, cert("0a", "b", 10))
	if err := s.Revoke(ctx, "04", t0.Add(time.Minute), 1, audit.Event{Actor: "cli"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.CertStatus(ctx, "04")
	if err != nil || got.Authority != "a" || !got.Revoked || got.Reason != 1 || !got.NotAfter.Equal(t0.Add(30*time.Hour)) {
		t.Errorf("status of 04: %+v, %v; want revoked (1) of a, expiring t0+30h", got, err)
	}
	if got, err := s.CertStatus(ctx, "02"); err != nil || got.Revoked {
		t.Errorf("status of 02: %+v, %v; want valid", got, err)
	}
	_, err = s.CertStatus(ctx, "99")
	wantKind(t, err, errs.NotFound, "status of an unknown serial")
	var walked []string
	after := ""
	for range 10 {
		page, err := s.StatusPage(ctx, store.StatusPageQuery{Authority: "a", AfterSerial: after, NotAfterAfter: t0.Add(15 * time.Hour), Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page {
			walked = append(walked, c.Serial)
		}
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].Serial
	}
	// 05 expires at t0+10h, before NotAfterAfter; 0a is b's.
	if want := []string{"01", "02", "03", "04"}; !slices.Equal(walked, want) {
		t.Errorf("walked %v, want %v", walked, want)
	}
}

func mapKeys(m map[string]store.CertStatus) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// testCRLNumbers: numbers start at 1 and grow per authority and shard.
func testCRLNumbers(t *testing.T, s store.Store) {
	mustAuthority(t, s, "a", "")
	mustAuthority(t, s, "b", "")
	got, err := s.NextCRLNumbers(ctx, "a", []int{0, 1, 2})
	if err != nil || !slices.Equal(got, []int64{1, 1, 1}) {
		t.Fatalf("first numbers %v, %v; want [1 1 1]", got, err)
	}
	got, _ = s.NextCRLNumbers(ctx, "a", []int{1})
	if !slices.Equal(got, []int64{2}) {
		t.Errorf("shard 1 again: %v, want [2]", got)
	}
	got, _ = s.NextCRLNumbers(ctx, "b", []int{1, 0})
	if !slices.Equal(got, []int64{1, 1}) {
		t.Errorf("authority b: %v, want [1 1]", got)
	}
	got, _ = s.NextCRLNumbers(ctx, "a", []int{2, 1, 0})
	if !slices.Equal(got, []int64{2, 3, 2}) {
		t.Errorf("a again: %v, want [2 3 2]", got)
	}
	_, err = s.NextCRLNumbers(ctx, "nope", []int{0})
	wantKind(t, err, errs.NotFound, "unknown authority")
}

// testPublished: signed CRLs and OCSP responses are kept, the newer
// replacing the older of the same shard or certificate, and read back by
// version (stores that implement store.Published).
func testPublished(t *testing.T, s store.Store) {
	p, ok := s.(store.Published)
	if !ok {
		t.Skip("the store keeps no signed revocation documents")
	}
	mustAuthority(t, s, "a", "")
	crl := func(shard int, der string) store.RevocationDoc {
		return store.RevocationDoc{Kind: "crl", Authority: "a", Shard: shard, DER: []byte(der), ThisUpdate: t0, NextUpdate: t0.Add(time.Hour)}
	}
	ocsp := func(serial string, revoked bool, der string) store.RevocationDoc {
		return store.RevocationDoc{Kind: "ocsp", Authority: "a", Hash: "sha1", Serial: serial, Revoked: revoked, DER: []byte(der),
			ThisUpdate: t0, NextUpdate: t0.Add(time.Hour)}
	}
	if err := p.PublishRevocation(ctx, []store.RevocationDoc{crl(0, "old 0"), crl(1, "one"), crl(-1, "whole"), crl(0, "zero"), ocsp("0a", false, "good")}); err != nil {
		t.Fatal(err)
	}
	read := func(after int64) (map[int]string, int64) {
		got := map[int]string{}
		v, err := p.PublishedCRLs(ctx, after, func(d store.RevocationDoc) error {
			if !d.ThisUpdate.Equal(t0) || !d.NextUpdate.Equal(t0.Add(time.Hour)) {
				t.Errorf("CRL %d: times %v %v", d.Shard, d.ThisUpdate, d.NextUpdate)
			}
			got[d.Shard] = string(d.DER)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got, v
	}
	got, v := read(0)
	if len(got) != 3 || got[0] != "zero" || got[1] != "one" || got[-1] != "whole" || v == 0 {
		t.Fatalf("published CRLs: %v, version %d", got, v)
	}
	if err := p.PublishRevocation(ctx, []store.RevocationDoc{crl(1, "one again"), ocsp("0a", true, "revoked")}); err != nil {
		t.Fatal(err)
	}
	if got, v2 := read(v); len(got) != 1 || got[1] != "one again" || v2 <= v {
		t.Errorf("CRLs published after version %d: %v, version %d", v, got, v2)
	}
	d, err := p.PublishedOCSP(ctx, "a", "sha1", "0a")
	if err != nil || !d.Revoked || string(d.DER) != "revoked" || !d.NextUpdate.Equal(t0.Add(time.Hour)) {
		t.Errorf("published OCSP response: %+v, %v", d, err)
	}
	_, err = p.PublishedOCSP(ctx, "a", "sha256", "0a")
	wantKind(t, err, errs.NotFound, "an OCSP response never published")
	wantKind(t, p.PublishRevocation(ctx, []store.RevocationDoc{{Kind: "bogus"}}), errs.Malformed, "unknown kind")

	// Pruning removes, a batch at a time, only the OCSP responses whose
	// nextUpdate has passed; CRLs stay.
	late := func(serial string) store.RevocationDoc {
		d := ocsp(serial, false, "fresh")
		d.NextUpdate = t0.Add(48 * time.Hour)
		return d
	}
	if err := p.PublishRevocation(ctx, []store.RevocationDoc{ocsp("0b", false, "b"), ocsp("0c", false, "c"), late("0d")}); err != nil {
		t.Fatal(err)
	}
	cut := t0.Add(2 * time.Hour)
	if n, err := p.PruneOCSP(ctx, cut, 2); err != nil || n != 2 {
		t.Fatalf("first prune: %d, %v; want 2 (the batch)", n, err)
	}
	if n, err := p.PruneOCSP(ctx, cut, 2); err != nil || n != 1 {
		t.Fatalf("second prune: %d, %v; want the one left", n, err)
	}
	if n, err := p.PruneOCSP(ctx, cut, 2); err != nil || n != 0 {
		t.Fatalf("third prune: %d, %v; want none", n, err)
	}
	for _, serial := range []string{"0a", "0b", "0c"} {
		_, err := p.PublishedOCSP(ctx, "a", "sha1", serial)
		wantKind(t, err, errs.NotFound, "a pruned OCSP response")
	}
	if d, err := p.PublishedOCSP(ctx, "a", "sha1", "0d"); err != nil || string(d.DER) != "fresh" {
		t.Errorf("an OCSP response still valid was pruned: %+v, %v", d, err)
	}
	if got, _ := read(0); len(got) != 3 {
		t.Errorf("pruning OCSP responses touched the CRLs: %v", got)
	}

	// Fresh: both hashes signed since the time asked, stating the same.
	both := func(serial string, revoked bool, this time.Time, sha256Revoked bool) []store.RevocationDoc {
		one, two := ocsp(serial, revoked, "1"), ocsp(serial, sha256Revoked, "2")
		two.Hash = "sha256"
		one.ThisUpdate, two.ThisUpdate = this, this
		return []store.RevocationDoc{one, two}
	}
	var docs []store.RevocationDoc
	docs = append(docs, both("10", false, t0, false)...)                 // fresh, good
	docs = append(docs, both("11", true, t0, true)...)                   // fresh, revoked
	docs = append(docs, both("12", false, t0.Add(-time.Hour), false)...) // stale
	docs = append(docs, both("13", false, t0, true)...)                  // the two disagree
	docs = append(docs, both("14", false, t0, false)[:1]...)             // one hash only
	docs = append(docs, both("15", false, t0, false)...)                 // beyond the range
	if err := p.PublishRevocation(ctx, docs); err != nil {
		t.Fatal(err)
	}
	fresh, err := p.FreshOCSP(ctx, "a", "0f", "14", t0.Add(-time.Minute))
	if want := map[string]bool{"10": false, "11": true}; err != nil || !maps.Equal(fresh, want) {
		t.Errorf("fresh OCSP responses: %v, %v; want %v", fresh, err, want)
	}
}
