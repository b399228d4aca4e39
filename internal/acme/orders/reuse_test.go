package orders_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"signet/internal/acme"
	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
	"signet/internal/store/postgres/pgtest"
)

// reuseEnv is an env whose books reuse valid authorizations for window,
// on SQLite or (postgres) PostgreSQL.
func reuseEnv(t *testing.T, backend string, window time.Duration) *env {
	url := ""
	if backend == "postgres" {
		url = pgtest.URL(t)
	}
	e := newEnv(t, url)
	e.reuse = window
	e.book = e.node()
	return e
}

// createAs creates an order for names as account.
func (e *env) createAs(account string, names ...string) store.ACMEOrder {
	e.t.Helper()
	acct := e.acct
	defer func() { e.acct = acct }()
	e.acct = account
	return e.create(names...)
}

// wantReused checks which authorizations of o reuse another's (source
// "order/n") and which wait for a validation.
func (e *env) wantReused(o store.ACMEOrder, sources ...string) {
	e.t.Helper()
	for n, az := range o.Authzs {
		want := sources[n]
		if az.Reused != want || (want != "") != (az.Status == store.StatusValid) {
			e.t.Fatalf("authorization %d (%s): %s, reuses %q; want it to reuse %q", n, az.Identifier.Value, az.Status, az.Reused, want)
		}
	}
}

// TestAuthzReuse: a valid authorization is reused by the next order of
// the same account for the same name, which comes back ready without a
// validation and issues; never by another account; the new order lives
// no longer than what it reuses. On SQLite and PostgreSQL.
func TestAuthzReuse(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			e := reuseEnv(t, backend, 7*24*time.Hour)
			ctx := context.Background()
			first := e.validate(e.create("www.example.org"))
			if az := first.Authzs[0]; !az.Expires.Equal(az.Challenges[0].Validated.Add(7 * 24 * time.Hour)) {
				t.Fatalf("a valid authorization expires %s, validated %s", az.Expires, az.Challenges[0].Validated)
			}
			runs := e.va.runs

			e.clock = e.clock.Add(3 * 24 * time.Hour) // the first order has expired; its authorization has not
			second := e.create("www.example.org", "mail.example.org")
			e.wantReused(second, first.ID+"/0", "")
			if s := e.book.Status(&second); s != store.StatusPending {
				t.Fatalf("an order with a new name is %s", s)
			}
			again := e.create("WWW.example.org")
			e.wantReused(again, first.ID+"/0")
			if s := e.book.Status(&again); s != store.StatusReady || e.va.runs != runs {
				t.Fatalf("an order for a name validated 3 days ago is %s after %d more validations", s, e.va.runs-runs)
			}
			stored := e.stored(again.ID)
			e.wantReused(stored, first.ID+"/0")
			if e.book.Status(&stored) != store.StatusReady || stored.Status != store.StatusReady {
				t.Fatalf("stored: %s (as %s)", e.book.Status(&stored), stored.Status)
			}
			if _, err := e.book.Finalize(ctx, &e.auth, stored, e.key, csr(t, nil, "www.example.org")); err != nil {
				t.Fatal(err)
			}
			if n := len(e.certificates()); n != 1 {
				t.Fatalf("%d certificates", n)
			}
			var data struct{ Reused []string }
			if err := e.h.Store.Events(ctx, func(ev audit.Event) error {
				if ev.Kind == audit.KindACMEOrderCreate && ev.Subject == again.ID {
					return json.Unmarshal(ev.Data, &data)
				}
				return nil
			}); err != nil || len(data.Reused) != 1 || data.Reused[0] != first.ID+"/0" {
				t.Fatalf("the order's create event names what it reused as %q (%v)", data.Reused, err)
			}

			// Another account of the same authority never reuses it.
			if err := e.h.Store.CreateACMEAccount(ctx, store.ACMEAccount{ID: "a2", Authority: "default", KeyID: "thumb2",
				Key: []byte(`{"kty":"EC"}`), Status: store.StatusValid, CreatedAt: time.Now()}, audit.Event{}); err != nil {
				t.Fatal(err)
			}
			e.wantReused(e.createAs("a2", "www.example.org"), "")

			// Near the authorization's expiry, a new order expires with it.
			e.clock = first.Authzs[0].Expires.Add(-time.Hour)
			late := e.create("www.example.org")
			e.wantReused(late, first.ID+"/0")
			if !late.Expires.Equal(first.Authzs[0].Expires) {
				t.Fatalf("an order reusing an authorization that expires %s expires %s", first.Authzs[0].Expires, late.Expires)
			}
			e.clock = first.Authzs[0].Expires.Add(time.Second)
			e.wantReused(e.create("www.example.org"), "")
		})
	}
}

// TestAuthzReuseEnds: a deactivated authorization is reused no more, and
// an order that reused it before can no longer be finalized; one past its
// own expiry is not reused even under a longer window, nor one validated
// longer ago than a shorter window; window 0 reuses nothing.
func TestAuthzReuseEnds(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			e := reuseEnv(t, backend, 24*time.Hour)
			ctx := context.Background()
			first := e.validate(e.create("www.example.org"))
			ready := e.create("www.example.org")
			e.wantReused(ready, first.ID+"/0")
			if _, err := e.book.Deactivate(ctx, e.stored(first.ID), 0); err != nil {
				t.Fatal(err)
			}
			e.wantReused(e.create("www.example.org"), "")
			_, err := e.book.Finalize(ctx, &e.auth, ready, e.key, csr(t, nil, "www.example.org"))
			wantType(t, err, acme.OrderNotReady, errs.Unauthorized)
			if n := len(e.certificates()); n != 0 {
				t.Fatalf("an order reusing a deactivated authorization issued %d certificates", n)
			}

			// Validated under a 1-day window: a 30-day window does not
			// stretch it, and a 1-hour one shortens it.
			valid := e.validate(e.create("mail.example.org"))
			e.clock = e.clock.Add(25 * time.Hour)
			e.reuse = 30 * 24 * time.Hour
			e.book = e.node()
			e.wantReused(e.create("mail.example.org"), "")
			e.clock = valid.Authzs[0].Challenges[0].Validated.Add(2 * time.Hour)
			e.wantReused(e.create("mail.example.org"), valid.ID+"/0")
			e.reuse = time.Hour
			e.book = e.node()
			e.wantReused(e.create("mail.example.org"), "")

			e.reuse = 0
			e.book = e.node()
			fresh := e.validate(e.create("ftp.example.org"))
			if !fresh.Authzs[0].Expires.IsZero() {
				t.Fatalf("with reuse off a valid authorization expires on its own: %s", fresh.Authzs[0].Expires)
			}
			e.wantReused(e.create("ftp.example.org"), "")
			e.reuse = 24 * time.Hour
			e.book = e.node()
			e.wantReused(e.create("ftp.example.org"), "")
		})
	}
}
