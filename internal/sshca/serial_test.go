package sshca

import (
	"sync"
	"testing"
	"time"
)

// TestSerialsGrow checks that serials only grow, whatever the clock does
// and however many goroutines draw at once, and that they follow time.
func TestSerialsGrow(t *testing.T) {
	var s serials
	at := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var last uint64
	for i, now := range []time.Time{at, at, at.Add(-time.Hour), at.Add(time.Millisecond), time.Unix(0, 0), at.Add(time.Hour)} {
		n, err := s.next(now)
		if err != nil || n <= last || n >= 1<<63 {
			t.Fatalf("serial %d: %d after %d (%v)", i, n, last, err)
		}
		last = n
	}
	if ms := int64(last >> serialRandomBits); ms != at.Add(time.Hour).Sub(serialEpoch).Milliseconds() {
		t.Errorf("serial %d carries %d ms since the epoch", last, ms)
	}

	seen := map[uint64]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				n, err := s.next(at)
				mu.Lock()
				if err != nil || seen[n] {
					t.Errorf("serial %d drawn twice (%v)", n, err)
				}
				seen[n] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}
