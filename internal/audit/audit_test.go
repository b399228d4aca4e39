package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"signet/internal/errs"
)

// memLog is a Reader over slices, the way a store would present its rows.
type memLog struct {
	events []Event
	certs  []issued
	rows   []Row
	err    error
}

func (m *memLog) States(ctx context.Context, keep func(table, key string) bool, fn func(Row) error) error {
	for _, r := range m.rows {
		if keep != nil && !keep(r.Table, r.Key) {
			continue
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func (m *memLog) Events(ctx context.Context, fn func(Event) error) error {
	for _, e := range m.events {
		if err := fn(e); err != nil {
			return err
		}
	}
	return m.err
}

func (m *memLog) IssuedCertificates(ctx context.Context, fn func(string, int64) error) error {
	for _, c := range m.certs {
		if err := fn(c.serial, c.seq); err != nil {
			return err
		}
	}
	return nil
}

// chain builds a sealed log: an authority, then n certificates, each issue
// followed by an unrelated event so that certificate seqs are not contiguous.
func chain(n int) *memLog {
	m := &memLog{}
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	add := func(e Event) {
		prev := Genesis
		if len(m.events) > 0 {
			prev = m.events[len(m.events)-1].Hash
		}
		e.Seq = int64(len(m.events) + 1)
		e.Time = t0.Add(time.Duration(e.Seq) * time.Millisecond)
		e.Seal(prev)
		m.events = append(m.events, e)
	}
	add(Event{Kind: KindAuthorityCreate, Actor: "cli", Authority: "root", Subject: "root"})
	for i := range n {
		serial := strings.Repeat(string(rune('a'+i)), 4)
		add(Event{Kind: KindCertificateIssue, Actor: "api:t", Authority: "root", Subject: serial, Data: json.RawMessage(`{"n":1}`)})
		m.certs = append(m.certs, issued{serial, int64(len(m.events))})
		add(Event{Kind: "key.generate", Actor: "cli", Subject: "pkcs11:object=k"})
	}
	return m
}

func TestSealIsDeterministicAndCoversEveryField(t *testing.T) {
	base := Event{Seq: 7, Time: time.Unix(1, 2).UTC(), Kind: "k", Actor: "a", Authority: "au", Subject: "s", Data: json.RawMessage(`{}`)}
	base.Seal(Genesis)
	again := base
	again.Seal(Genesis)
	if !bytes.Equal(base.Hash, again.Hash) || len(base.Hash) != HashSize {
		t.Fatalf("sealing twice differs: %x %x", base.Hash, again.Hash)
	}
	// The time zone is not part of the hash: the same instant seals the same.
	zoned := base
	zoned.Time = base.Time.In(time.FixedZone("x", 3600))
	if !zoned.Sealed() {
		t.Error("same instant in another zone no longer matches its hash")
	}
	changes := map[string]func(e *Event){
		"seq":       func(e *Event) { e.Seq++ },
		"time":      func(e *Event) { e.Time = e.Time.Add(time.Nanosecond) },
		"kind":      func(e *Event) { e.Kind += "x" },
		"actor":     func(e *Event) { e.Actor += "x" },
		"authority": func(e *Event) { e.Authority += "x" },
		"subject":   func(e *Event) { e.Subject += "x" },
		"data":      func(e *Event) { e.Data = json.RawMessage(`{ }`) },
		"prev":      func(e *Event) { e.Prev = bytes.Repeat([]byte{1}, HashSize) },
		// Moving bytes between adjacent fields must change the hash too.
		"boundary": func(e *Event) { e.Kind, e.Actor = "ka", "" },
	}
	for name, change := range changes {
		e := base
		change(&e)
		if e.Sealed() {
			t.Errorf("changing %s keeps the old hash valid", name)
		}
	}
}

func TestVerifyIntact(t *testing.T) {
	for _, n := range []int{0, 1, 5} {
		m := chain(n)
		if n == 0 {
			m = &memLog{}
		}
		rep, err := Verify(context.Background(), m)
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		wantHead := Genesis
		if len(m.events) > 0 {
			wantHead = m.events[len(m.events)-1].Hash
		}
		if !rep.Intact() || rep.Events != int64(len(m.events)) || rep.Certificates != int64(n) || !bytes.Equal(rep.Head, wantHead) {
			t.Errorf("n=%d: report %+v", n, rep)
		}
	}
}

func TestVerifyFindsTheFirstBrokenLink(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func(m *memLog)
		seq     int64
		inWords string
	}{
		{"changed data", func(m *memLog) { m.events[3].Data = json.RawMessage(`{"n":2}`) }, 4, "changed"},
		{"changed actor", func(m *memLog) { m.events[1].Actor = "mallory" }, 2, "changed"},
		{"deleted middle event", func(m *memLog) { m.events = append(m.events[:4:4], m.events[5:]...) }, 5, "missing"},
		{"swapped events", func(m *memLog) { m.events[2], m.events[3] = m.events[3], m.events[2] }, 3, "missing"},
		{"seq rewritten", func(m *memLog) { m.events[3].Seq = 3 }, 4, "belongs"},
		{"resealed with a wrong prev", func(m *memLog) { m.events[2].Seal(Genesis) }, 3, "link"},
		{"deleted last events", func(m *memLog) { m.events = m.events[:len(m.events)-2] }, 10, "log ends at event 9"},
		{"certificate points at another event", func(m *memLog) { m.certs[1].seq = 3 }, 3, `"key.generate"`},
		{"two certificates share an event", func(m *memLog) { m.certs[1].seq = 2 }, 2, "certificate bbbb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := chain(5)
			tt.tamper(m)
			rep, err := Verify(context.Background(), m)
			if errs.KindOf(err) != errs.Rejected {
				t.Fatalf("error %v, want kind rejected", err)
			}
			if rep.BrokenSeq != tt.seq || !strings.Contains(rep.Reason, tt.inWords) || rep.Intact() {
				t.Errorf("report %+v, want seq %d and %q in the reason", rep, tt.seq, tt.inWords)
			}
			if !strings.Contains(err.Error(), "seq ") {
				t.Errorf("error %q does not name the seq", err)
			}
		})
	}
}

func TestVerifyPassesOnReaderErrors(t *testing.T) {
	m := chain(2)
	m.err = errs.New(errs.Unavailable, "database gone")
	_, err := Verify(context.Background(), m)
	if errs.KindOf(err) != errs.Unavailable || errors.Is(err, &errs.Error{Kind: errs.Rejected}) {
		t.Fatalf("got %v, want the reader's error", err)
	}
}

// TestSealIsStable pins the hashes of two events: the encoding they cover
// is in every chain, so a change to canonical that is not byte for byte the
// same breaks every log already written.
func TestSealIsStable(t *testing.T) {
	first := Event{Seq: 7, Time: time.Unix(1, 2).UTC(), Kind: "certificate.issue", Actor: "api:t", Authority: "root",
		Subject: "0a", Data: json.RawMessage(`{"n":"é"}`)}
	first.Seal(Genesis)
	second := Event{Seq: 8, Time: time.Unix(-1, 0), Kind: "key.generate", Actor: "cli"}
	second.Seal(first.Hash)
	for _, tt := range []struct {
		e    Event
		want string
	}{
		{first, "a4135a0d76f5494e892f93bbb5ec7ede73ca7d1b032fceefdee9c9b93b956631"},
		{second, "e4b04343096494b56a1416743612ea609985a898e5948dd30dfdd18ddafd4cad"},
	} {
		if got := hex.EncodeToString(tt.e.Hash); got != tt.want {
			t.Errorf("event %d: hash %s, want %s", tt.e.Seq, got, tt.want)
		}
	}
}

// TestCheckpoints signs checkpoints of a log, reads them back from a file
// of appended notes, and has Verify prove the chain holds them: a log cut
// back below a kept checkpoint, or rewritten under it, is broken.
func TestCheckpoints(t *testing.T) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := VerifierKey(key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	m := chain(3)
	var file []byte
	for _, e := range m.events[2:4] {
		msg, err := signForTest(key, Checkpoint{Seq: e.Seq, Hash: e.Hash, Time: e.Time})
		if err != nil {
			t.Fatal(err)
		}
		file = append(file, msg...)
	}
	var kept []Checkpoint
	for _, msg := range SplitNotes(file) {
		c, err := OpenCheckpoint(msg, vkey)
		if err != nil {
			t.Fatalf("OpenCheckpoint(%q): %v", msg, err)
		}
		kept = append(kept, c)
	}
	if len(kept) != 2 || kept[1].Seq != 4 || !bytes.Equal(kept[1].Hash, m.events[3].Hash) || !kept[1].Time.Equal(m.events[3].Time.Truncate(time.Second)) {
		t.Fatalf("checkpoints read back: %+v", kept)
	}
	if rep, err := Verify(context.Background(), m, kept...); err != nil || rep.Checkpoints != 2 {
		t.Fatalf("Verify with its own checkpoints: %+v, %v", rep, err)
	}

	// Another key's signature, and a changed text, are refused.
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	otherKey, _ := VerifierKey(other.Public().(ed25519.PublicKey))
	msg := SplitNotes(file)[0]
	if _, err := OpenCheckpoint(msg, otherKey); errs.KindOf(err) != errs.Rejected {
		t.Errorf("checkpoint opened with another key: %v", err)
	}
	if _, err := OpenCheckpoint(bytes.Replace(msg, []byte("\n3\n"), []byte("\n9\n"), 1), vkey); errs.KindOf(err) != errs.Rejected {
		t.Errorf("edited checkpoint opened: %v", err)
	}

	// The newest events deleted: the log ends before a kept checkpoint.
	cut := &memLog{events: m.events[:3], certs: m.certs[:1]}
	if rep, err := Verify(context.Background(), cut, kept...); errs.KindOf(err) != errs.Rejected || rep.BrokenSeq != 4 ||
		!strings.Contains(rep.Reason, "kept checkpoint names event 4") {
		t.Errorf("Verify of a log cut below a checkpoint: %+v, %v", rep, err)
	}
	// The log rebuilt from event 3 on: event 4 is no longer the one kept.
	other4 := *m
	other4.events = slices.Clone(m.events)
	other4.events[3].Actor = "mallory"
	other4.events[3].Seal(m.events[2].Hash)
	if rep, err := Verify(context.Background(), &other4, kept...); errs.KindOf(err) != errs.Rejected || rep.BrokenSeq != 4 {
		t.Errorf("Verify of a log rewritten under a checkpoint: %+v, %v", rep, err)
	}
}
