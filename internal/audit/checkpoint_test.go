package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"signet/internal/errs"
)

// signForTest signs a checkpoint as ca.SignCheckpoint does (package ca
// imports this one; its test checks the two agree).
func signForTest(key ed25519.PrivateKey, c Checkpoint) ([]byte, error) {
	vkey, err := VerifierKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	skey := "PRIVATE+KEY+" + v.Name() + "+" + fmt.Sprintf("%08x", v.KeyHash()) + "+" +
		base64.StdEncoding.EncodeToString(append([]byte{1}, key.Seed()...))
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, err
	}
	return note.Sign(&note.Note{Text: CheckpointText(v.Name(), c)}, signer)
}

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
	c := &Checkpointer{Sign: func(cp Checkpoint) ([]byte, error) { return signForTest(key, cp) }, File: filepath.Join(t.TempDir(), "checkpoints"), Head: f.head,
		Lead: func(context.Context) (bool, error) { return lead, nil }}
	ctx := context.Background()

	if err := c.Checkpoint(ctx); err != nil || c.Latest() != nil || len(kept(t, c.File, vkey)) != 0 {
		t.Fatalf("a node that does not lead signed: %v, %q", err, c.Latest())
	}
	lead = true
	for range 2 { // the second time, the head has not moved
		if err := c.Checkpoint(ctx); err != nil {
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

// TestRestoreIsNotTruncation: a store restored from a backup goes on from
// the backup's head with a restore event naming it. Verify accepts it and
// reports it, setting aside the checkpoints of the events it dropped; the
// same log cut back without the event, or with one naming another head,
// is broken.
func TestRestoreIsNotTruncation(t *testing.T) {
	ctx := context.Background()
	live := chain(3) // 7 events
	lost := Checkpoint{Seq: 6, Hash: live.events[5].Hash, Time: live.events[5].Time}
	kept := Checkpoint{Seq: 2, Hash: live.events[1].Hash, Time: live.events[1].Time}

	// The backup was taken at event 3 (the first certificate's issue and
	// the event after it); the restore event follows it, and the log goes on.
	restoredLog := func(head []byte) *memLog {
		m := &memLog{events: slices.Clone(live.events[:3]), certs: live.certs[:1]}
		data, _ := json.Marshal(RestoreData{Seq: 3, Head: hex.EncodeToString(head)})
		e := Event{Seq: 4, Time: lost.Time.Add(time.Hour), Kind: KindRestore, Actor: "cli", Data: data}
		e.Seal(m.events[2].Hash)
		m.events = append(m.events, e)
		next := Event{Seq: 5, Time: e.Time.Add(time.Second), Kind: KindKeyGenerate, Actor: "cli", Subject: "file:keys/x.key"}
		next.Seal(e.Hash)
		m.events = append(m.events, next)
		return m
	}
	m := restoredLog(live.events[2].Hash)
	after := Checkpoint{Seq: 5, Hash: m.events[4].Hash, Time: m.events[4].Time}
	rep, err := Verify(ctx, m, kept, lost, after)
	if err != nil || !slices.Equal(rep.Restores, []int64{4}) || rep.LostToRestore != 1 || rep.Checkpoints != 2 {
		t.Fatalf("Verify of a restored log: %+v, %v; want one restore at 4, one checkpoint lost to it, two held", rep, err)
	}
	// A restore event that does not follow the head it names.
	if rep, err := Verify(ctx, restoredLog(live.events[1].Hash), kept, lost); errs.KindOf(err) != errs.Rejected || rep.BrokenSeq != 4 {
		t.Errorf("Verify with a restore naming another head: %+v, %v", rep, err)
	}
	// Cut back and continued without a restore event: the checkpoint of a
	// dropped event is not in the log.
	cut := &memLog{events: slices.Clone(live.events[:3]), certs: live.certs[:1]}
	e := Event{Seq: 4, Time: lost.Time.Add(time.Hour), Kind: KindKeyGenerate, Actor: "cli"}
	e.Seal(cut.events[2].Hash)
	cut.events = append(cut.events, e)
	if rep, err := Verify(ctx, cut, kept, lost); errs.KindOf(err) != errs.Rejected || rep.Restores != nil {
		t.Errorf("Verify of a truncated log: %+v, %v", rep, err)
	}
	// A checkpoint signed after the restore must be in the log.
	if _, err := Verify(ctx, m, Checkpoint{Seq: 6, Hash: lost.Hash, Time: after.Time.Add(time.Minute)}); errs.KindOf(err) != errs.Rejected {
		t.Errorf("Verify accepted a checkpoint signed after the restore of an event the log lacks: %v", err)
	}
}
