package audit_test

import (
	"context"
	"testing"
	"time"

	"signet/internal/audit"
	"signet/internal/store"
	"signet/internal/store/postgres"
	"signet/internal/store/postgres/pgtest"
)

// TestWatchOneNodeVerifies runs the background verification of two nodes
// on one PostgreSQL store, as signet serve wires it (Lead through the
// store, job audit.JobVerify), for two periods: one node reads the log and
// reports it intact, the other reads nothing and says "follower"; when the
// verifying node's store closes (it dies), the other verifies from its
// next period on.
func TestWatchOneNodeVerifies(t *testing.T) {
	ctx := context.Background()
	where := pgtest.URL(t)
	type node struct {
		store store.Store
		reads *countingStore
		watch *audit.Watch
	}
	var nodes [2]node
	for i := range nodes {
		s, err := postgres.Open(ctx, where)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		var shared store.Shared = s
		nodes[i] = node{s, &countingStore{Store: s}, &audit.Watch{Every: time.Hour,
			Lead: func(ctx context.Context) (bool, error) { return shared.Lead(ctx, audit.JobVerify) }}}
	}
	s := nodes[0].store
	recordCertificates(t, s, 20)
	leader := -1
	for period := range 2 {
		for i, n := range nodes {
			before := n.reads.reads
			v := n.watch.Once(ctx, n.reads)
			read := n.reads.reads > before
			switch {
			case v.State == "intact" && read && (leader == -1 || leader == i):
				leader = i
			case v.State == "follower" && !read && leader != i:
			default:
				t.Fatalf("period %d, node %d: %+v, read the log: %v (leader: node %d); want one node to verify, the other to follow", period, i, v, read, leader)
			}
		}
	}
	if leader == -1 {
		t.Fatal("no node verified the log")
	}
	nodes[leader].store.Close()
	// PostgreSQL releases the lock when it has ended the dead node's
	// session: the other node takes over at one of its next periods.
	other := nodes[1-leader]
	var v audit.Verification
	for range 100 {
		if v = other.watch.Once(ctx, other.reads); v.State != "follower" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if v.State != "intact" || v.Events != 21 {
		t.Fatalf("after the verifying node died: %+v; want the other node to verify 21 events", v)
	}
}
