package sqlstore_test

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"signet/internal/audit"
	"signet/internal/store"
	"signet/internal/store/sqlstore"
)

// TestAuditHeadRevokedAfter: AuditHead says whether a revocation follows
// an event, and asks the database through the partial index of
// revocation events, so that a poll does not read the log from that event
// on (on PostgreSQL at ten million events, a scan of seconds each second
// on every follower, whose checkpointer asks from seq 0).
func TestAuditHeadRevokedAfter(t *testing.T) {
	onEach(t, func(t *testing.T, b backend, where string) {
		s := b.open(t, where)
		ev := audit.Event{Actor: "test"}
		t0 := time.Date(2026, 12, 6, 1, 2, 3, 0, time.UTC)
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(s.CreateAuthority(ctx, store.Authority{Name: "ca", KeyURI: "pkcs11:object=ca", CertDER: []byte{0x30}}, ev))
		for i := range 20 {
			serial := fmt.Sprintf("%02x", 10+i)
			must(s.RecordCertificate(ctx, store.Certificate{Serial: serial, Authority: "ca", DNSNames: []string{serial + ".example.org"},
				NotBefore: t0, NotAfter: t0.Add(time.Hour), DER: []byte{0x30, byte(i)}}, ev))
		}
		head, _, revoked, err := s.AuditHead(ctx, 0)
		if err != nil || revoked {
			t.Fatalf("AuditHead(0) before any revocation: revoked %v, %v", revoked, err)
		}
		must(s.Revoke(ctx, "0a", t0, 1, ev))
		must(s.RecordCertificate(ctx, store.Certificate{Serial: "ff", Authority: "ca", DNSNames: []string{"ff.example.org"},
			NotBefore: t0, NotAfter: t0.Add(time.Hour), DER: []byte{0x30, 0xff}}, ev))
		for after, want := range map[int64]bool{0: true, head: true, head + 1: false} {
			if _, _, revoked, err := s.AuditHead(ctx, after); err != nil || revoked != want {
				t.Errorf("AuditHead(%d): revoked %v, %v; want %v", after, revoked, err, want)
			}
		}

		driver, explain, q := "sqlite", "EXPLAIN QUERY PLAN ", sqlstore.RevokedAfter
		if b.name == "postgres" {
			driver, explain, q = "pgx", "EXPLAIN ", strings.Replace(q, "?", "$1", 1)
		}
		db, err := sql.Open(driver, where)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if b.name == "postgres" { // a test's log is a few pages, which PostgreSQL would rather scan
			if _, err := conn.ExecContext(ctx, "SET enable_seqscan = off"); err != nil {
				t.Fatal(err)
			}
		}
		rows, err := conn.QueryContext(ctx, explain+q, int64(0))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		var plan []string
		for rows.Next() {
			vals := make([]any, len(cols))
			for i := range vals {
				vals[i] = new(sql.RawBytes)
			}
			if err := rows.Scan(vals...); err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				plan = append(plan, string(*v.(*sql.RawBytes)))
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if p := strings.Join(plan, " "); !strings.Contains(p, "events_revocations") {
			t.Errorf("the query for a revocation after an event does not use events_revocations: %s", p)
		}
	})
}
