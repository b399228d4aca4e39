package wfe_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"signet/internal/acme/wfe"
	"signet/internal/server"
)

// TestAccountAcrossNodes: a second front end on the same store (another
// node) caches the account it has seen sign, yet a deactivation made on
// the first node refuses the account there within the cache's 1 s bound.
func TestAccountAcrossNodes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := newKey(t)
	c := e.client(key)
	acct := e.register(c)

	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	b, err := wfe.New(ctx, wfe.Options{CA: e.h.CA, Store: e.h.Store, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	tsB := httptest.NewUnstartedServer(server.New(server.Options{CA: e.h.CA, Store: e.h.Store, ACME: b, Authority: "default", Log: log}).Handler())
	tsB.StartTLS()
	t.Cleanup(tsB.Close)
	nodeA := e.ts
	onB := func() *problemDoc {
		e.ts = tsB
		defer func() { e.ts = nodeA }()
		kid := tsB.URL + strings.TrimPrefix(acct.URI, nodeA.URL)
		_, _, p := e.signed(key, kid, kid, nil)
		return p
	}
	if p := onB(); p != nil {
		t.Fatalf("node B refused the account: %+v", p)
	}
	if err := c.DeactivateReg(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	wantProblem(t, onB(), "unauthorized")
}
