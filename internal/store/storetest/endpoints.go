package storetest

import (
	"testing"
	"time"

	"signet/internal/errs"
	"signet/internal/store"
)

// testEndpointChecks: a check replaces the record of its endpoint (the
// same HOST:PORT with another protocol or name is another endpoint), and
// the records read back whole, all or by serial.
func testEndpointChecks(t *testing.T, s store.Store) {
	first := store.EndpointCheck{Endpoint: "db.example.org:5432", StartTLS: "postgres", Name: "db.example.org",
		Serial: "0a", NotAfter: t0.Add(24 * time.Hour), CheckedAt: t0, Verdict: "warn"}
	other := store.EndpointCheck{Endpoint: "db.example.org:5432", Name: "db.example.org", CheckedAt: t0, Verdict: "fail"}
	for _, c := range []store.EndpointCheck{first, other} {
		if err := s.RecordEndpointCheck(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	again := first
	again.Serial, again.NotAfter, again.CheckedAt, again.Verdict = "0b", t0.Add(48*time.Hour), t0.Add(time.Hour), "ok"
	if err := s.RecordEndpointCheck(ctx, again); err != nil {
		t.Fatal(err)
	}
	all, err := s.EndpointChecks(ctx, "")
	if err != nil || len(all) != 2 {
		t.Fatalf("EndpointChecks: %+v, %v; want 2", all, err)
	}
	if got := all[0]; got.StartTLS != "" || got.Serial != "" || !got.NotAfter.IsZero() || got.Verdict != "fail" {
		t.Errorf("record without a certificate: %+v", got)
	}
	if got := all[1]; got.Serial != "0b" || !got.NotAfter.Equal(again.NotAfter) || !got.CheckedAt.Equal(again.CheckedAt) || got.Verdict != "ok" || got.StartTLS != "postgres" {
		t.Errorf("replaced record: %+v, want %+v", got, again)
	}
	if got, err := s.EndpointChecks(ctx, "0a"); err != nil || len(got) != 0 {
		t.Errorf("checks of the replaced serial: %+v, %v; want none", got, err)
	}
	if got, err := s.EndpointChecks(ctx, "0b"); err != nil || len(got) != 1 || got[0].Endpoint != "db.example.org:5432" {
		t.Errorf("checks of serial 0b: %+v, %v", got, err)
	}
	bad := again
	bad.Verdict = "maybe"
	wantKind(t, s.RecordEndpointCheck(ctx, bad), errs.Malformed, "an unknown verdict")
}
