package cputime

import (
	"crypto/sha256"
	"testing"
	"time"
)

// TestProcessCounts checks that busy work shows up as CPU time and idle
// waiting does not. The bounds are loose: the machine may be shared.
func TestProcessCounts(t *testing.T) {
	start := Process()
	deadline := time.Now().Add(10 * time.Second)
	var sum [32]byte
	for Process()-start < 10*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatalf("10 s of hashing counted %v of CPU", Process()-start)
		}
		for range 1000 {
			sum = sha256.Sum256(sum[:])
		}
	}
	start = Process()
	time.Sleep(100 * time.Millisecond)
	if idle := Process() - start; idle >= 50*time.Millisecond {
		t.Errorf("100 ms of sleep counted %v of CPU", idle)
	}
}
