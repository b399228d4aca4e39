package server_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"signet/internal/audit"
	"signet/internal/ca"
	"signet/internal/kms"
	"signet/internal/server"
)

// TestAuditVerification: GET /api/v1/audit/verification answers "pending"
// before the first background verification, then its outcome and the head
// it covers; after a row is edited in the database the next one reports
// the log broken and names the row. Without a watch it is a 404 problem.
func TestAuditVerification(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, kms.ECDSAP256, "file:root.key")
	if _, err := f.ca.CreateRoot(ctx, ca.RootSpec{CommonName: "test root", KeyURI: "file:root.key"}); err != nil {
		t.Fatal(err)
	}
	watch := &audit.Watch{}
	ts := httptest.NewServer(server.New(server.Options{CA: f.ca, Store: f.store, AdminToken: []byte("secret"), Audit: watch}).Handler())
	defer ts.Close()
	type verification struct {
		State       string
		HeadSeq     int64 `json:"head_seq"`
		Head        string
		RowProblems []audit.RowProblem `json:"row_problems"`
	}
	get := func() verification {
		t.Helper()
		a := call(t, ts, "GET", "/api/v1/audit/verification", "secret", "", "")
		var v verification
		if err := json.Unmarshal(a.body, &v); a.status != http.StatusOK || err != nil {
			t.Fatalf("GET verification: %d %s, %v", a.status, a.body, err)
		}
		return v
	}
	if v := get(); v.State != "pending" {
		t.Fatalf("before the first verification: %+v, want pending", v)
	}
	watch.Once(ctx, f.store)
	seq, head, _, err := f.store.AuditHead(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if v := get(); v.State != "intact" || v.HeadSeq != seq || v.Head == "" || len(head) == 0 {
		t.Fatalf("after a verification: %+v, want intact up to event %d", v, seq)
	}
	db, err := sql.Open("sqlite", f.where)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("UPDATE authorities SET key_uri = 'pkcs11:object=mallory'"); err != nil {
		t.Fatal(err)
	}
	watch.Once(ctx, f.store)
	if v := get(); v.State != "broken" || len(v.RowProblems) != 1 || v.RowProblems[0].Table != "authorities" {
		t.Fatalf("after editing a row: %+v, want broken naming the authorities row", v)
	}
	if a := call(t, ts, "GET", "/api/v1/audit/verification", "", "", ""); a.status != http.StatusUnauthorized {
		t.Fatalf("without a credential: %+v, want 401", a)
	}
	off := httptest.NewServer(server.New(server.Options{CA: f.ca, Store: f.store, AdminToken: []byte("secret")}).Handler())
	defer off.Close()
	if a := call(t, off, "GET", "/api/v1/audit/verification", "secret", "", ""); a.status != http.StatusNotFound || a.typ != "urn:signet:error:not-found" {
		t.Fatalf("without a watch: %+v, want 404", a)
	}
}
