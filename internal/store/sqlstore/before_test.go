package sqlstore_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"signet/internal/audit"
	"signet/internal/store"
	"signet/internal/store/postgres/pgtest"
)

// restoreBefore makes, for backend b, a database holding what the store
// code before sqlstore wrote (testdata/before, made by makebefore.go.txt)
// and returns where it is.
func restoreBefore(t *testing.T, b backend) string {
	t.Helper()
	switch b.name {
	case "sqlite":
		gz, err := os.ReadFile(filepath.Join("testdata", "before", "signet.db.gz"))
		if err != nil {
			t.Fatal(err)
		}
		r, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			t.Fatal(err)
		}
		db, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		path := b.where(t)
		if err := os.WriteFile(path, db, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	case "postgres":
		dump, err := os.ReadFile(filepath.Join("testdata", "before", "postgres.sql"))
		if err != nil {
			t.Fatal(err)
		}
		url := pgtest.URL(t)
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, string(dump)); err != nil { // no arguments: one script
			t.Fatalf("restore the dump: %v", err)
		}
		return url
	}
	t.Fatalf("no database made before sqlstore for %s", b.name)
	return ""
}

// TestOpenStoreMadeBefore opens, on each database, a store written by
// the code before sqlstore (one row of every kind): every row reads back,
// the audit chain verifies, and new writes extend it.
func TestOpenStoreMadeBefore(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			where := restoreBefore(t, b)
			s := b.open(t, where)
			// Opening it appended one state.baseline event, the hashes of
			// every row as found (9 rows of the six hashed kinds), from
			// which verify checks the rows.
			rep, err := audit.Verify(ctx, s)
			if err != nil || rep.Events != 12 || rep.Certificates != 3 || rep.StateFrom != 12 || rep.Rows != 9 {
				t.Fatalf("audit.Verify: %+v, %v; want 12 events (one state.baseline, the 12th), 3 certificates, 9 rows", rep, err)
			}
			var last audit.Event
			if err := s.Events(ctx, func(e audit.Event) error { last = e; return nil }); err != nil || last.Kind != audit.KindStateBaseline ||
				len(last.State) != 9 {
				t.Fatalf("last event: %+v, %v; want a state.baseline with 9 rows", last, err)
			}
			// Opened again, it has its baseline already.
			s.Close()
			s = b.open(t, where)
			if rep, err := audit.Verify(ctx, s); err != nil || rep.Events != 12 {
				t.Fatalf("audit.Verify after reopening: %+v, %v; want the 12 events", rep, err)
			}
			t0 := time.Date(2026, 12, 6, 1, 2, 3, 456789012, time.UTC)

			as, err := s.Authorities(ctx)
			if err != nil || len(as) != 3 {
				t.Fatalf("authorities: %+v, %v", as, err)
			}
			if web := as[2]; web.Name != "web" || web.Parent != "root" || web.BaseURL != "http://ca.example.org" || web.Shards != 2 ||
				!web.CreatedAt.Equal(t0) || web.DefaultValidity != time.Hour {
				t.Errorf("authority web: %+v", web)
			}
			// ACME became a setting later: the issuing X.509 authority keeps
			// serving it, the root and the SSH authority do not.
			for _, a := range as {
				if a.ACME != (a.Name == "web") || a.RequireEAB {
					t.Errorf("authority %q: ACME %v, RequireEAB %v; want ACME only for web, no EAB", a.Name, a.ACME, a.RequireEAB)
				}
				if a.Disabled { // authorities in service came later still: all are
					t.Errorf("authority %q is disabled after the migration", a.Name)
				}
			}
			c, err := s.Certificate(ctx, "01aa")
			if err != nil || !slices.Equal(c.DNSNames, []string{"www.example.org", "example.org"}) || c.Shard != 1 || c.Status != store.Valid {
				t.Errorf("certificate 01aa: %+v, %v", c, err)
			}
			if named, err := s.Certificates(ctx, store.Filter{Name: "postmaster@example.org"}); err != nil || len(named) != 1 ||
				named[0].Status != store.Revoked || named[0].RevocationReason != 1 {
				t.Errorf("certificates named postmaster@example.org: %+v, %v", named, err)
			}
			// Counted by the index a later step made.
			counts, err := s.CertificateCounts(ctx)
			var total, revoked int64
			for _, c := range counts {
				total += c.Count
				if c.Status == "revoked" {
					revoked += c.Count
				}
			}
			if err != nil || total != 2 || revoked != 1 {
				t.Errorf("certificate counts: %+v, %v; want 2 X.509 certificates, 1 revoked", counts, err)
			}
			var statuses []string
			if _, err := s.Statuses(ctx, store.StatusQuery{}, func(c store.CertStatus) error {
				statuses = append(statuses, c.Serial)
				return nil
			}); err != nil || len(statuses) != 2 {
				t.Errorf("statuses: %v, %v", statuses, err)
			}
			if ssh, err := s.SSHCertificate(ctx, 7); err != nil || ssh.RevokedBy != store.RevokedByKeyID || ssh.Principals[0] != "alice" {
				t.Errorf("SSH certificate 7: %+v, %v", ssh, err)
			}
			if keys, err := s.SSHKeys(ctx, "users"); err != nil || len(keys) != 1 || keys[0].State != store.SSHKeyActive {
				t.Errorf("SSH keys: %+v, %v", keys, err)
			}
			if a, err := s.ACMEAccountByKey(ctx, "web", "thumb1"); err != nil || a.ID != "acct1" || a.EABKeyID != "kid1" {
				t.Errorf("ACME account: %+v, %v", a, err)
			}
			if k, err := s.EABKey(ctx, "kid1"); err != nil || k.AccountID != "acct1" {
				t.Errorf("EAB key: %+v, %v", k, err)
			}
			o, err := s.ACMEOrder(ctx, "order1")
			if err != nil || o.CertSerial != "01aa" || !o.Authzs[0].Challenges[0].Validated.Equal(t0) || o.Version != 1 {
				t.Errorf("ACME order: %+v, %v", o, err)
			}
			// The rate limits count the order made before them, with no
			// pending authorizations (it has none anyway).
			if load, err := s.ACMEAccountLoad(ctx, "acct1", o.CreatedAt, o.CreatedAt); err != nil || load.OrdersSince != 1 || load.PendingAuthzs != 0 {
				t.Errorf("load of acct1: %+v, %v; want its one order, no pending authorization", load, err)
			}
			// Its valid authorization was validated before reuse: it offers
			// nothing to reuse.
			if reusable, err := s.ReusableACMEOrders(ctx, "acct1", []string{o.Authzs[0].ReuseKey()}, o.CreatedAt, 10); err != nil || len(reusable) != 0 {
				t.Errorf("reusable orders of acct1: %d, %v; want none", len(reusable), err)
			}
			if v, err := s.Secret(ctx, "cookie", []byte("another")); err != nil || string(v) != "secret value" {
				t.Errorf("secret: %q, %v", v, err)
			}
			// Endpoint checks came later: none recorded, and one records.
			if got, err := s.EndpointChecks(ctx, ""); err != nil || len(got) != 0 {
				t.Errorf("endpoint checks of a database made before them: %+v, %v", got, err)
			}
			if err := s.RecordEndpointCheck(ctx, store.EndpointCheck{Endpoint: "www.example.org:443", Name: "www.example.org",
				Serial: "01aa", NotAfter: c.NotAfter, CheckedAt: t0, Verdict: "ok"}); err != nil {
				t.Errorf("record an endpoint check: %v", err)
			}
			if n, err := s.NextCRLNumbers(ctx, "web", []int{0, 1}); err != nil || !slices.Equal(n, []int64{2, 2}) {
				t.Errorf("next CRL numbers: %v, %v", n, err)
			}

			// The console's sessions came later: the table is there.
			session := store.ConsoleSession{IDHash: make([]byte, 32), Operator: "admin", Role: "admin", Certificate: "01aa", CreatedAt: t0, SeenAt: t0}
			if err := s.CreateConsoleSession(ctx, session); err != nil {
				t.Errorf("console session: %v", err)
			}
			if got, err := s.ConsoleSession(ctx, session.IDHash); err != nil || got.Operator != "admin" || got.Certificate != "01aa" {
				t.Errorf("console session read back: %+v, %v", got, err)
			}

			// Operators came later: none before, and one is added and read.
			if ops, err := s.Operators(ctx); err != nil || len(ops) != 0 {
				t.Errorf("operators of a store made before them: %v, %v", ops, err)
			}
			if err := s.AddOperator(ctx, store.Operator{Name: "vera", Role: store.RoleViewer, TokenHash: make([]byte, 32)}, audit.Event{Actor: "after"}); err != nil {
				t.Errorf("add an operator: %v", err)
			}
			if got, err := s.Operator(ctx, "vera"); err != nil || got.Role != store.RoleViewer {
				t.Errorf("operator read back: %+v, %v", got, err)
			}
			// Published OCSP responses are pruned over the later index.
			if err := s.PublishRevocation(ctx, []store.RevocationDoc{{Kind: "ocsp", Authority: "web", Hash: "sha1", Serial: "0e",
				DER: []byte("old"), ThisUpdate: t0, NextUpdate: t0.Add(time.Hour)}}); err != nil {
				t.Fatal(err)
			}
			if n, err := s.PruneOCSP(ctx, t0.Add(2*time.Hour), 10); err != nil || n != 1 {
				t.Errorf("prune OCSP responses: %d, %v; want 1", n, err)
			}

			// The events since a time, read over the index a later step made.
			var evs []audit.Event
			if err := s.Events(ctx, func(e audit.Event) error { evs = append(evs, e); return nil }); err != nil {
				t.Fatal(err)
			}
			since, want := evs[len(evs)-1].Time, 0
			for _, e := range evs {
				if !e.Time.Before(since) {
					want++
				}
			}
			if got, err := s.AuditEvents(ctx, store.EventFilter{Since: since}); err != nil || len(got) != want || got[len(got)-1].Seq != evs[len(evs)-1].Seq {
				t.Errorf("events since %v: %d, %v; want %d, the last one last", since, len(got), err, want)
			}

			// The chain goes on from the old head.
			o.Status = store.StatusInvalid
			if err := s.UpdateACMEOrder(ctx, o, audit.Event{Kind: audit.KindACMEAuthzValidate}); err != nil {
				t.Fatal(err)
			}
			if err := s.RecordCertificate(ctx, store.Certificate{Serial: "03cc", Authority: "web", DNSNames: []string{"new.example.org"},
				NotBefore: t0, NotAfter: t0.Add(time.Hour), DER: []byte{0x30}}, audit.Event{Actor: "after"}); err != nil {
				t.Fatal(err)
			}
			if err := s.RevokeSSHCertificate(ctx, 7, t0, audit.Event{Actor: "after"}); err == nil {
				t.Error("revoked a certificate revoked before")
			}
			// An account made before takes compare-and-set changes.
			a, _ := s.ACMEAccount(ctx, "acct1")
			if err := s.UpdateACMEAccountContacts(ctx, a, []string{"mailto:new@example.org"}, audit.Event{Actor: "after"}); err != nil {
				t.Fatal(err)
			}
			if rep, err := audit.Verify(ctx, s); err != nil || rep.Events != 16 || rep.Certificates != 4 || rep.Rows != 11 { // with the operator added
				t.Errorf("audit.Verify after new writes: %+v, %v", rep, err)
			}
		})
	}
}
