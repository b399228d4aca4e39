package wfe_test

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"signet/internal/acme/wfe"
	"signet/internal/server"
	"signet/internal/store"
)

// node is a second front end on e's store: another node of a cluster,
// with its own account cache.
type node struct {
	e  *env
	ts *httptest.Server
}

// secondNode starts a node on st, by default e's store.
func (e *env) secondNode(st ...store.Store) *node {
	e.t.Helper()
	s := e.h.Store
	if len(st) > 0 {
		s = st[0]
	}
	return e.secondNodeWith(s, nil)
}

// secondNodeWith starts a node on s, its options changed by opt if set.
func (e *env) secondNodeWith(s store.Store, opt func(*wfe.Options)) *node {
	e.t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts := wfe.Options{CA: e.h.CA, Store: s, Log: log}
	if opt != nil {
		opt(&opts)
	}
	b, err := wfe.New(context.Background(), opts)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(b.Close)
	ts := httptest.NewUnstartedServer(server.New(server.Options{CA: e.h.CA, Store: s, ACME: b, Authority: "default", Log: log}).Handler())
	ts.StartTLS()
	e.t.Cleanup(ts.Close)
	return &node{e: e, ts: ts}
}

// url turns a URL of the first node into the same URL on n.
func (n *node) url(u string) string { return n.ts.URL + strings.TrimPrefix(u, n.e.ts.URL) }

// signed posts payload to the first node's url, on n, signed by key under
// the first node's kid.
func (n *node) signed(key crypto.Signer, kid, url string, payload []byte) *problemDoc {
	e, nodeA := n.e, n.e.ts
	kid, url = n.url(kid), n.url(url)
	e.ts = n.ts
	defer func() { e.ts = nodeA }()
	_, _, p := e.signed(key, kid, url, payload)
	return p
}

// TestAccountAcrossNodes: a second front end on the same store (another
// node) caches the account it has seen sign, yet a deactivation made on
// the first node refuses the account there within the cache's 1 s bound.
func TestAccountAcrossNodes(t *testing.T) {
	e := newEnv(t)
	key := newKey(t)
	c := e.client(key)
	acct := e.register(c)
	b := e.secondNode()
	if p := b.signed(key, acct.URI, acct.URI, nil); p != nil {
		t.Fatalf("node B refused the account: %+v", p)
	}
	if err := c.DeactivateReg(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	wantProblem(t, b.signed(key, acct.URI, acct.URI, nil), "unauthorized")
}

// TestAccountChangeAcrossNodes: a node whose cache still holds the account
// as it was before a deactivation or key change on another node refuses
// to change the account, rather than write its stale status or key back.
func TestAccountChangeAcrossNodes(t *testing.T) {
	ctx := context.Background()
	update := []byte(`{"contact":["mailto:new@example.org"]}`)
	stored := func(t *testing.T, e *env, uri string) store.ACMEAccount {
		a, err := e.h.Store.ACMEAccount(ctx, path.Base(uri))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}

	t.Run("deactivated", func(t *testing.T) {
		e := newEnv(t)
		key := newKey(t)
		c := e.client(key)
		acct := e.register(c)
		b := e.secondNode()
		if p := b.signed(key, acct.URI, acct.URI, nil); p != nil { // warms B's cache
			t.Fatalf("node B refused the account: %+v", p)
		}
		if err := c.DeactivateReg(ctx); err != nil {
			t.Fatal(err)
		}
		wantProblem(t, b.signed(key, acct.URI, acct.URI, update), "unauthorized")
		if a := stored(t, e, acct.URI); a.Status != store.StatusDeactivated || a.Contacts[0] != "mailto:ops@example.org" {
			t.Fatalf("stored account is %s with %v, want deactivated and unchanged", a.Status, a.Contacts)
		}
	})

	t.Run("key changed", func(t *testing.T) {
		e := newEnv(t)
		oldKey, newK := newKey(t), newKey(t)
		c := e.client(oldKey)
		acct := e.register(c)
		b := e.secondNode()
		if p := b.signed(oldKey, acct.URI, acct.URI, nil); p != nil {
			t.Fatalf("node B refused the account: %+v", p)
		}
		if err := c.AccountKeyRollover(ctx, newK); err != nil {
			t.Fatal(err)
		}
		want := stored(t, e, acct.URI).KeyID

		wantProblem(t, b.signed(oldKey, acct.URI, acct.URI, update), "unauthorized")

		// A key change signed by the old key, to a third key.
		third := newKey(t)
		oldJWK, _ := json.Marshal(jose.JSONWebKey{Key: oldKey.Public()})
		inner, _ := json.Marshal(map[string]any{"account": b.url(acct.URI), "oldKey": json.RawMessage(oldJWK)})
		kcURL := e.ts.URL + "/acme/default/key-change"
		payload := signJWS(t, third, "", b.url(kcURL), "", inner, nil)
		wantProblem(t, b.signed(oldKey, acct.URI, kcURL, payload), "unauthorized")

		if a := stored(t, e, acct.URI); a.KeyID != want || a.Status != store.StatusValid || a.Contacts[0] != "mailto:ops@example.org" {
			t.Fatalf("stored account changed: key %s (want %s), %s, %v", a.KeyID, want, a.Status, a.Contacts)
		}
	})
}

// heldOrders is a store whose next order read, once armed, waits for release
// after telling read: what a node read is stale by the time it acts.
type heldOrders struct {
	store.Store
	armed         atomic.Bool
	read, release chan struct{}
}

func (s *heldOrders) ACMEOrder(ctx context.Context, id string) (store.ACMEOrder, error) {
	o, err := s.Store.ACMEOrder(ctx, id)
	if s.armed.CompareAndSwap(true, false) {
		close(s.read)
		<-s.release
	}
	return o, err
}

// TestFinalizeRaceAcrossNodes: a node that read the order as ready but
// loses its finalization to another node answers orderNotReady with 403,
// as RFC 8555 §7.4 says, not 409.
func TestFinalizeRaceAcrossNodes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := newKey(t)
	c := e.client(key)
	acct := e.register(c)
	o := e.readyOrder(c, "race.signet.test")

	held := &heldOrders{Store: e.h.Store, read: make(chan struct{}), release: make(chan struct{})}
	b := e.secondNode(held)
	held.armed.Store(true)
	lost := make(chan *problemDoc)
	payload, _ := json.Marshal(map[string]string{"csr": base64.RawURLEncoding.EncodeToString(csr(t, nil, "race.signet.test"))})
	go func() { lost <- b.signed(key, acct.URI, o.FinalizeURL, payload) }()
	<-held.read // B has read the order as ready
	if _, _, err := c.CreateOrderCert(ctx, o.FinalizeURL, csr(t, nil, "race.signet.test"), true); err != nil {
		t.Fatalf("finalize on node A: %v", err)
	}
	close(held.release)
	p := <-lost
	wantProblem(t, p, "orderNotReady")
	if p.Status != http.StatusForbidden {
		t.Fatalf("status %d (%s), want 403", p.Status, p.Detail)
	}
}
