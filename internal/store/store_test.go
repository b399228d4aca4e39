package store

import (
	"encoding/json"
	"testing"
	"time"

	"signet/internal/audit"
	"signet/internal/errs"
)

func TestPrepareEvent(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 5, time.FixedZone("x", 7200))
	ev, err := PrepareEvent(audit.Event{Time: now, Actor: "cli", Data: json.RawMessage(" { \"a\" : [1, 2] } "), Seq: 9, Hash: []byte{1}},
		audit.KindCertificateIssue, "0a", "tls")
	if err != nil {
		t.Fatal(err)
	}
	if ev.Kind != audit.KindCertificateIssue || ev.Subject != "0a" || ev.Authority != "tls" || string(ev.Data) != `{"a":[1,2]}` ||
		!ev.Time.Equal(now) || ev.Time.Location() != time.UTC || ev.Seq != 0 || ev.Hash != nil {
		t.Errorf("prepared %+v", ev)
	}
	if ev, _ := PrepareEvent(audit.Event{Kind: "k"}, "", "", ""); !ev.Time.IsZero() {
		t.Errorf("a zero time was filled: %v", ev.Time)
	}
	bad := []struct {
		name string
		ev   audit.Event
	}{
		{"no kind", audit.Event{}},
		{"other kind", audit.Event{Kind: audit.KindCertificateRevoke}},
		{"other subject", audit.Event{Subject: "0b"}},
		{"other authority", audit.Event{Authority: "vpn"}},
		{"data not JSON", audit.Event{Data: json.RawMessage("{")}},
	}
	for _, tt := range bad {
		kind := audit.KindCertificateIssue
		if tt.name == "no kind" {
			kind = ""
		}
		if _, err := PrepareEvent(tt.ev, kind, "0a", "tls"); errs.KindOf(err) != errs.Malformed {
			t.Errorf("%s: %v, want malformed", tt.name, err)
		}
	}
}

func TestChecks(t *testing.T) {
	for _, s := range []string{"", "0A", "0a:1b", "0x1", "g", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0"} {
		if errs.KindOf(CheckSerial(s)) != errs.Malformed {
			t.Errorf("serial %q accepted", s)
		}
	}
	if err := CheckSerial("00ff"); err != nil {
		t.Error(err)
	}
	good := Certificate{Serial: "01", Authority: "a", NotBefore: time.Unix(1, 0), NotAfter: time.Unix(2, 0), DER: []byte{0x30}}
	if err := CheckCertificate(good); err != nil {
		t.Error(err)
	}
	for name, change := range map[string]func(c *Certificate){
		"no authority":         func(c *Certificate) { c.Authority = "" },
		"no DER":               func(c *Certificate) { c.DER = nil },
		"no validity":          func(c *Certificate) { c.NotAfter = time.Time{} },
		"unknown status":       func(c *Certificate) { c.Status = "expired" },
		"revoked with no time": func(c *Certificate) { c.Status = Revoked },
		"reason 7":             func(c *Certificate) { c.RevocationReason = 7 },
	} {
		c := good
		change(&c)
		if errs.KindOf(CheckCertificate(c)) != errs.Malformed {
			t.Errorf("%s accepted", name)
		}
	}
	if errs.KindOf(CheckAuthority(Authority{Name: "a", Parent: "a"})) != errs.Malformed ||
		errs.KindOf(CheckAuthority(Authority{Name: "a", Policy: json.RawMessage("{")})) != errs.Malformed {
		t.Error("bad authority accepted")
	}
}

func TestAuthorityValidity(t *testing.T) {
	a := Authority{Name: "x", DefaultValidity: time.Hour, MaxValidity: 2 * time.Hour}
	for _, c := range []struct {
		req, want time.Duration
		kind      errs.Kind // of the error; none when want is not 0
	}{
		{0, time.Hour, 0}, {90 * time.Minute, 90 * time.Minute, 0}, {2 * time.Hour, 2 * time.Hour, 0},
		{3 * time.Hour, 0, errs.Rejected}, {-time.Second, 0, errs.Malformed},
	} {
		got, err := a.Validity(c.req)
		if got != c.want || (c.want != 0) != (err == nil) || (err != nil && errs.KindOf(err) != c.kind) {
			t.Errorf("Validity(%s) = %s, %v; want %s, kind %q", c.req, got, err, c.want, c.kind)
		}
	}
	if got, err := (Authority{}).Validity(0); err == nil || errs.KindOf(err) != errs.Malformed {
		t.Errorf("no default: Validity(0) = %s, %v; want a Malformed error", got, err)
	}
	if got, err := (Authority{DefaultValidity: time.Hour}).Validity(1000 * time.Hour); err != nil || got != 1000*time.Hour {
		t.Errorf("no maximum: Validity = %s, %v", got, err)
	}
}

// TestFilterNarrow: the status and expiring of signet list and GET
// /api/v1/certificates select by expiry as their names say, whatever the
// filter held before (signet list hides the expired unless --all).
func TestFilterNarrow(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	week := 7 * 24 * time.Hour
	for _, tc := range []struct {
		start         Filter
		status        string
		expiring      time.Duration
		want          Status
		after, before time.Time
	}{
		{Filter{}, "", 0, "", time.Time{}, time.Time{}},
		{Filter{}, "valid", 0, Valid, now, time.Time{}},
		{Filter{}, "revoked", 0, Revoked, time.Time{}, time.Time{}},
		{Filter{NotAfterAfter: now}, "expired", 0, Valid, time.Time{}, now},
		{Filter{}, "", week, "", now, now.Add(week)},
		{Filter{}, "revoked", week, Revoked, now, now.Add(week)},
		{Filter{NotAfterBefore: now.Add(time.Hour)}, "", week, "", now, now.Add(time.Hour)},
	} {
		f := tc.start
		if !f.Narrow(tc.status, tc.expiring, now) || f.Status != tc.want || !f.NotAfterAfter.Equal(tc.after) || !f.NotAfterBefore.Equal(tc.before) {
			t.Errorf("%+v narrowed to %q, %v: %+v", tc.start, tc.status, tc.expiring, f)
		}
	}
	var f Filter
	if f.Narrow("lost", 0, now) {
		t.Error("status lost accepted")
	}
}
