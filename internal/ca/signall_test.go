package ca_test

import (
	"context"
	"testing"

	"signet/internal/revocation"
)

// TestSignAllRegistersNothing: `signet crl` signs every shard once, and
// must leave nothing behind that later issuances call (a Service built for
// its defaults registered with OnIssue and was told of every issuance).
func TestSignAllRegistersNothing(t *testing.T) {
	f := newFixture(t, nil)
	before := f.ca.IssueHooks()
	signed, err := revocation.SignAll(context.Background(), revocation.Options{CA: f.ca, Store: f.store}, "web", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(signed) == 0 {
		t.Fatal("no CRL signed")
	}
	if got := f.ca.IssueHooks(); got != before {
		t.Errorf("SignAll left %d OnIssue hooks, had %d", got, before)
	}
}
