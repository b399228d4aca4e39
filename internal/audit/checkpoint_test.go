package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// fakeHead is a store head a test moves.
type fakeHead struct {
	mu      sync.Mutex
	seq     int64
	revoked bool
}

func (f *fakeHead) set(seq int64, revoked bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq, f.revoked = seq, revoked
}

func (f *fakeHead) head(_ context.Context, after int64) (int64, []byte, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h := make([]byte, HashSize)
	h[0] = byte(f.seq)
	return f.seq, h, f.revoked && f.seq > after, nil
}

// kept reads back the checkpoints of the file.
func kept(t *testing.T, path, vkey string) []Checkpoint {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []Checkpoint
	for _, msg := range SplitNotes(b) {
		c, err := OpenCheckpoint(msg, vkey)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// TestCheckpointer signs when the head moved and this node leads, appends
// each checkpoint to the file, signs after a revocation without waiting for
// the interval, and once more when it stops.
func TestCheckpointer(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	vkey, _ := VerifierKey(key.Public().(ed25519.PublicKey))
	f := &fakeHead{seq: 3}
	lead := false
	c := &Checkpointer{Key: key, File: filepath.Join(t.TempDir(), "checkpoints"), Head: f.head,
		Lead: func(context.Context) (bool, error) { return lead, nil }}
	ctx := context.Background()

	if err := c.Sign(ctx); err != nil || c.Latest() != nil || len(kept(t, c.File, vkey)) != 0 {
		t.Fatalf("a node that does not lead signed: %v, %q", err, c.Latest())
	}
	lead = true
	for range 2 { // the second time, the head has not moved
		if err := c.Sign(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := kept(t, c.File, vkey); len(got) != 1 || got[0].Seq != 3 {
		t.Fatalf("checkpoints after two signs on one head: %+v", got)
	}
	latest, err := OpenCheckpoint(c.Latest(), vkey)
	if err != nil || latest.Seq != 3 {
		t.Fatalf("latest: %+v, %v", latest, err)
	}

	// A revocation is signed at the next poll, long before the interval.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(runCtx, time.Millisecond, time.Hour, func(err error) { t.Error(err) })
	}()
	f.set(4, true)
	for i := 0; ; i++ {
		if got := kept(t, c.File, vkey); len(got) == 2 && got[1].Seq == 4 {
			break
		}
		if i == 5000 {
			t.Fatal("no checkpoint after a revocation")
		}
		time.Sleep(time.Millisecond)
	}
	// A moved head without a revocation waits for the interval, or the end.
	f.set(5, false)
	stop()
	<-done
	if got := kept(t, c.File, vkey); len(got) != 3 || got[2].Seq != 5 {
		t.Fatalf("checkpoints after stopping: %+v; want the last at 5", got)
	}
}
