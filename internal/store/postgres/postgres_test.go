package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/store"
	"signet/internal/store/postgres/pgtest"
)

var ctx = context.Background()

// openNodes opens the database at url n times, as n nodes would, each store
// with its own pool and writer, closed when the test ends.
func openNodes(t testing.TB, url string, n int, opts ...Option) []*Store {
	t.Helper()
	var ss []*Store
	for range n {
		s, err := Open(ctx, url, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		ss = append(ss, s)
	}
	return ss
}

// TestNodesStartTogether: nodes opening a new database at once apply the
// schema once (the advisory lock), and all of them work.
func TestNodesStartTogether(t *testing.T) {
	url := pgtest.URL(t)
	const nodes = 4
	stores := make([]*Store, nodes)
	errc := make(chan error, nodes)
	for i := range nodes {
		go func() {
			s, err := Open(ctx, url)
			stores[i] = s
			errc <- err
		}()
	}
	for range nodes {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range stores {
		t.Cleanup(func() { s.Close() })
	}
	var versions int
	if err := stores[0].db.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations").Scan(&versions); err != nil || versions != len(migrations) {
		t.Fatalf("%d schema versions recorded, %v; want %d", versions, err, len(migrations))
	}
	if err := stores[1].CreateAuthority(ctx, store.Authority{Name: "ca", KeyURI: "file:k"}, audit.Event{Actor: "t"}); err != nil {
		t.Fatal(err)
	}
}

// TestNodesShareOneChain: several stores (nodes) write the same database at
// once, with serials raced between nodes; the audit chain stays one line,
// each serial is recorded once, and every node's status feed, followed by
// seq, sees every certificate exactly once.
func TestNodesShareOneChain(t *testing.T) {
	url := pgtest.URL(t)
	const nodes, workers, each = 3, 8, 25
	ss := openNodes(t, url, nodes, WithMaxConns(6))
	if err := ss[0].CreateAuthority(ctx, store.Authority{Name: "ca", KeyURI: "file:k"}, audit.Event{Actor: "t"}); err != nil {
		t.Fatal(err)
	}
	// Each node follows the feed while the others write.
	seen := make([]map[string]int, nodes)
	stop := make(chan struct{})
	var followers sync.WaitGroup
	for n := range nodes {
		seen[n] = map[string]int{}
		followers.Add(1)
		go func() {
			defer followers.Done()
			var head int64
			for done := false; !done; {
				select {
				case <-stop:
					done = true // one last poll after the writers
				case <-time.After(5 * time.Millisecond):
				}
				h, err := ss[n].Statuses(ctx, store.StatusQuery{AfterSeq: head}, func(c store.CertStatus) error {
					seen[n][c.Serial]++
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				head = h
			}
		}()
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := map[string]int{}
	for n := range nodes {
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					serial := fmt.Sprintf("%02x%02x%02x", n, w, i)
					if i%5 == 0 {
						serial = fmt.Sprintf("ee%02x", i) // raced by every worker of every node
					}
					c := store.Certificate{Serial: serial, Authority: "ca", DNSNames: []string{"h.example.org"},
						NotBefore: time.Unix(1e9, 0), NotAfter: time.Now().Add(time.Hour), DER: []byte{0x30, 0x00}}
					err := ss[n].RecordCertificate(ctx, c, audit.Event{Actor: fmt.Sprintf("node%d", n)})
					// Only the raced serials may conflict: a node that lost a
					// race for the chain head must not fail a unique serial.
					if err != nil && (errs.KindOf(err) != errs.Conflict || i%5 != 0) {
						t.Errorf("node %d, serial %s: %v", n, serial, err)
					}
					if err == nil {
						mu.Lock()
						ok[serial]++
						mu.Unlock()
					}
				}
			}()
		}
	}
	wg.Wait()
	close(stop)
	followers.Wait()
	for serial, k := range ok {
		if k != 1 {
			t.Errorf("%s recorded %d times", serial, k)
		}
	}
	rep, err := audit.Verify(ctx, ss[2])
	if err != nil || rep.Certificates != int64(len(ok)) || rep.Events != int64(len(ok)+1) {
		t.Fatalf("audit.Verify: %+v, %v; want %d certificates", rep, err, len(ok))
	}
	for n := range nodes {
		if len(seen[n]) != len(ok) {
			t.Errorf("node %d's feed saw %d certificates, want %d", n, len(seen[n]), len(ok))
		}
		for serial, k := range seen[n] {
			if k != 1 || ok[serial] != 1 {
				t.Errorf("node %d's feed: %s seen %d times (recorded %d)", n, serial, k, ok[serial])
			}
		}
	}
	var batches int64
	for _, s := range ss {
		b, _ := s.WriteStats()
		batches += b
	}
	t.Logf("%d certificates in %d batches over %d nodes", len(ok), batches, nodes)
}

// TestUnavailable: a store whose database has gone fails reads and writes
// with errs.Unavailable within its timeout, rather than hanging.
func TestUnavailable(t *testing.T) {
	srv := pgtest.Start(t)
	s := openNodes(t, pgtest.NewDatabase(t, srv.URL()), 1, WithTimeout(3*time.Second))[0]
	if err := s.CreateAuthority(ctx, store.Authority{Name: "ca", KeyURI: "file:k"}, audit.Event{Actor: "t"}); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	err := s.AppendEvent(ctx, audit.Event{Kind: "note", Actor: "t"})
	if errs.KindOf(err) != errs.Unavailable {
		t.Errorf("write with the database stopped: %v, want kind unavailable", err)
	}
	if _, err := s.Authorities(ctx); errs.KindOf(err) != errs.Unavailable {
		t.Errorf("read with the database stopped: %v, want kind unavailable", err)
	}
	srv.StartAgain()
	// The pool reconnects by itself.
	deadline := time.Now().Add(20 * time.Second)
	for {
		err = s.AppendEvent(ctx, audit.Event{Kind: "note", Actor: "t"})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if rep, err := audit.Verify(ctx, s); err != nil || rep.Events != 2 {
		t.Errorf("after restart: %+v, %v; want 2 events", rep, err)
	}
}
