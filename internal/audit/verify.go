package audit

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"os"
	"slices"
	"strings"

	"signet/internal/errs"
)

// Reader is what Verify needs from a store. Both methods stream in seq order
// and stop with fn's error if fn returns one. Verify runs the two iterations
// at the same time, the certificate one started first: a certificate visible
// to it must therefore have its issue event visible to the later event scan,
// which holds for any append-only store read in committed snapshots.
type Reader interface {
	// Events calls fn for every event in seq order.
	Events(ctx context.Context, fn func(Event) error) error
	// IssuedCertificates calls fn for every certificate the store holds with
	// the seq of its certificate.issue event, in order of that seq. SSH
	// certificates are named "ssh:<serial>" and have ssh.certificate.issue
	// events.
	IssuedCertificates(ctx context.Context, fn func(serial string, issueSeq int64) error) error
	// States calls fn for every row of the CA's state, hashed as it is now
	// (see Row), in any order; with a keep function, only for the rows
	// whose table and key it keeps (the others need not be hashed). Verify
	// calls it after Events has returned.
	States(ctx context.Context, keep func(table, key string) bool, fn func(Row) error) error
}

// Report is the outcome of Verify.
type Report struct {
	Events       int64  // events read
	Certificates int64  // certificates cross-checked against their issue event
	Head         []byte // hash of the last intact event (Genesis for an empty log)
	BrokenSeq    int64  // first seq at which the log is broken; 0 if intact
	Reason       string // why, for a person; "" if intact

	Rows int64 // current rows compared with the newest event that names them
	// StateFrom is the first event from which rows are covered: the
	// state.baseline event of a home made before rows were hashed (a row
	// changed before it and left so is not caught), else 1.
	StateFrom int64
	// RowProblems are the rows that differ from the log, at most
	// maxRowProblems of them; RowProblemCount counts them all.
	RowProblems     []RowProblem
	RowProblemCount int64
	// Checkpoints are the checkpoints the chain was found to contain.
	Checkpoints int
	// Restores are the seqs of the restore events (KindRestore) found;
	// LostToRestore counts the checkpoints given that name events a
	// restore dropped (signed before it, after its backup's head).
	Restores      []int64
	LostToRestore int
}

// A RowProblem is a row that differs from the newest event naming it, or
// that no event explains, or that an event names and is gone.
type RowProblem struct {
	Table  string   `json:"table"`
	Key    string   `json:"key"`
	Seq    int64    `json:"seq,omitempty"`    // the newest event naming the row
	Fields []string `json:"fields,omitempty"` // the columns that differ, where known
	Reason string   `json:"reason"`
}

func (p RowProblem) String() string {
	s := p.Table + " " + p.Key + ": " + p.Reason
	if len(p.Fields) > 0 {
		s += " (" + strings.Join(p.Fields, ", ") + ")"
	}
	return s
}

// maxRowProblems bounds the rows a report lists.
const maxRowProblems = 100

// Intact reports whether Verify found nothing wrong.
func (r Report) Intact() bool {
	return r.BrokenSeq == 0 && r.Reason == "" && r.RowProblemCount == 0
}

// HeadHex is Head in hex, the value an operator writes down or publishes so
// that truncating the log together with its certificates is caught later.
func (r Report) HeadHex() string { return hex.EncodeToString(r.Head) }

// rowMark is the newest event naming a row and the row's hash in it.
type rowMark struct {
	seq  int64
	hash [HashSize]byte
}

// passRows is the most rows whose marks Verify holds at once (84 bytes
// each in its map, BenchmarkVerifyMemory: about 126 MB): a log naming more
// rows has them compared in passes over parts of them, 2, 4, 8... (see
// rowSet). The events are read once for all of them: the marks of the
// parts not held are spilled to a temporary file and read back, part by
// part.
var passRows = 1_500_000

// A rowID names a row in Verify's memory: the first 16 bytes of SHA-256
// over a salt drawn for the run and the row's ID, so that no one can choose
// keys that collide.
type rowID [16]byte

// rowSet holds the marks of one part of the rows: those whose rowID, as a
// number, is part modulo parts. While the events are read (part 0), the
// marks of the other parts go to spill, in the order of their events.
type rowSet struct {
	salt  [16]byte
	parts uint64
	part  uint64
	marks map[rowID]rowMark
	spill *spill
}

func newRowSet() *rowSet {
	s := &rowSet{parts: 1, marks: map[rowID]rowMark{}}
	rand.Read(s.salt[:])
	return s
}

func (s *rowSet) id(table, key string) rowID {
	var a [128]byte
	b := append(append(append(append(a[:0], s.salt[:]...), table...), '/'), key...)
	sum := sha256.Sum256(b)
	return rowID(sum[:16])
}

func (s *rowSet) holds(id rowID) bool {
	return binary.BigEndian.Uint64(id[:8])%s.parts == s.part
}

// keep is the keep function of States for the part held: nil for all rows.
func (s *rowSet) keep() func(table, key string) bool {
	if s.parts == 1 {
		return nil
	}
	return func(table, key string) bool { return s.holds(s.id(table, key)) }
}

// mark records e as the newest event of the rows it names: in the map for
// the part held, in the spill for the others.
func (s *rowSet) mark(e Event) error {
	for _, row := range e.State {
		m := rowMark{seq: e.Seq}
		copy(m.hash[:], row.Hash)
		id := s.id(row.Table, row.Key)
		if s.holds(id) {
			s.marks[id] = m
		} else if err := s.spill.write(id, m); err != nil {
			return err
		}
	}
	return nil
}

// split doubles the parts while more than passRows marks are held, keeping
// part 0, a half of the one before, and spilling the other half.
func (s *rowSet) split() error {
	for len(s.marks) > passRows {
		if s.spill == nil {
			var err error
			if s.spill, err = newSpill(); err != nil {
				return err
			}
		}
		s.parts *= 2
		for id, m := range s.marks {
			if !s.holds(id) {
				if err := s.spill.write(id, m); err != nil {
					return err
				}
				delete(s.marks, id)
			}
		}
	}
	return nil
}

// load holds part instead of the part held: its marks, read back from the
// spill, the newest of each row.
func (s *rowSet) load(part uint64) error {
	s.part = part
	clear(s.marks)
	return s.spill.read(func(id rowID, m rowMark) {
		if s.holds(id) && m.seq >= s.marks[id].seq {
			s.marks[id] = m
		}
	})
}

func (s *rowSet) close() {
	if s.spill != nil {
		s.spill.close()
	}
}

// spill is a temporary file of marks, each a rowID, a seq and a hash,
// mode 0600 and unlinked at once where the system allows (so that nothing
// else opens it by name while the rows are compared with it).
type spill struct {
	f        *os.File
	w        *bufio.Writer
	unlinked bool
}

const spillRecord = len(rowID{}) + 8 + HashSize

func newSpill() (*spill, error) {
	f, err := os.CreateTemp("", "signet-audit-verify-*")
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "audit verify: a temporary file for the rows above %d", passRows)
	}
	return &spill{f: f, w: bufio.NewWriterSize(f, 1<<20), unlinked: os.Remove(f.Name()) == nil}, nil
}

func (sp *spill) write(id rowID, m rowMark) error {
	var b [spillRecord]byte
	copy(b[:], id[:])
	binary.BigEndian.PutUint64(b[len(id):], uint64(m.seq))
	copy(b[len(id)+8:], m.hash[:])
	_, err := sp.w.Write(b[:])
	return sp.failed(err)
}

// read calls fn for every mark written, in the order written.
func (sp *spill) read(fn func(rowID, rowMark)) error {
	if err := sp.w.Flush(); err != nil {
		return sp.failed(err)
	}
	if _, err := sp.f.Seek(0, io.SeekStart); err != nil {
		return sp.failed(err)
	}
	r := bufio.NewReaderSize(sp.f, 1<<20)
	var b [spillRecord]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err == io.EOF {
			return nil
		} else if err != nil {
			return sp.failed(err)
		}
		var m rowMark
		m.seq = int64(binary.BigEndian.Uint64(b[len(rowID{}):]))
		copy(m.hash[:], b[len(rowID{})+8:])
		fn(rowID(b[:len(rowID{})]), m)
	}
}

func (sp *spill) failed(err error) error {
	if err == nil {
		return nil
	}
	return errs.Wrap(errs.Unavailable, err, "audit verify: temporary file %s", sp.f.Name())
}

func (sp *spill) close() {
	sp.f.Close()
	if !sp.unlinked {
		os.Remove(sp.f.Name())
	}
}

type issued struct {
	serial string
	seq    int64
}

// Verify walks the log and reports the first broken link: an event whose
// fields no longer match its hash, a missing or reordered seq, a Prev that
// is not the previous event's hash, or a certificate whose issue event is
// missing or is not its certificate.issue (so deleting the last events is
// caught as long as the certificates remain). A broken log returns the
// Report and an error of kind errs.Rejected; a failure to read returns the
// reader's error.
//
// Then it compares every current row with the newest event that names it
// (see Row): a row that differs, that no event explains, or that an event
// names and is gone is a RowProblem. Its memory does not grow with the
// rows: above passRows of them it compares them in parts, reading the
// rows again for each, with the marks of the parts after the first kept
// in a temporary file (56 bytes a row); before the second part it reads
// the events again, which must still be the chain it checked. Each checkpoint must be an event of the
// chain with that hash: a log cut back below a kept checkpoint is broken.
func Verify(ctx context.Context, r Reader, checkpoints ...Checkpoint) (Report, error) {
	rep := Report{Head: Genesis, StateFrom: 1}
	rows := newRowSet()
	defer rows.close()
	kept := map[int64][]Checkpoint{}
	for _, c := range checkpoints {
		kept[c.Seq] = append(kept[c.Seq], c)
	}
	var certErr error
	certs := func(yield func(issued) bool) {
		errStop := errors.New("stop")
		err := r.IssuedCertificates(ctx, func(serial string, seq int64) error {
			if !yield(issued{serial, seq}) {
				return errStop
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			certErr = err
		}
	}
	nextCert, stop := iter.Pull(certs)
	defer stop()
	cert, haveCert := nextCert()

	broken := func(seq int64, format string, args ...any) error {
		rep.BrokenSeq = seq
		rep.Reason = fmt.Sprintf(format, args...)
		return errs.New(errs.Rejected, "audit log broken at seq %d: %s", seq, rep.Reason)
	}
	errBroken := errors.New("broken")
	var brokenErr error
	prevSeq, prevHash := int64(0), Genesis
	last := Event{Hash: Genesis}
	err := r.Events(ctx, func(e Event) error {
		want := prevSeq + 1
		switch {
		case e.Seq > want:
			brokenErr = broken(want, "event %d is missing (event %d follows event %d)", want, e.Seq, prevSeq)
		case e.Seq < want:
			brokenErr = broken(want, "event %d appears where event %d belongs (duplicate or reordered)", e.Seq, want)
		case !e.Sealed():
			brokenErr = broken(e.Seq, "event %d was changed after it was sealed (its hash does not match its fields)", e.Seq)
		case !bytes.Equal(e.Prev, prevHash):
			brokenErr = broken(e.Seq, "event %d does not link to event %d (prev hash differs)", e.Seq, prevSeq)
		}
		if brokenErr == nil && e.Kind == KindRestore {
			brokenErr = restored(e, prevSeq, prevHash, kept, &rep, broken)
		}
		for _, c := range kept[e.Seq] {
			if brokenErr == nil && !bytes.Equal(c.Hash, e.Hash) {
				brokenErr = broken(e.Seq, "event %d is not the one a kept checkpoint names (hash %x, checkpoint %x)", e.Seq, e.Hash, c.Hash)
			}
			rep.Checkpoints++
		}
		delete(kept, e.Seq)
		if brokenErr != nil {
			return errBroken
		}
		if e.Kind == KindStateBaseline {
			rep.StateFrom = e.Seq
		}
		if err := rows.mark(e); err != nil {
			return err
		}
		if err := rows.split(); err != nil {
			return err
		}
		for haveCert && cert.seq <= e.Seq {
			want := KindCertificateIssue
			if strings.HasPrefix(cert.serial, "ssh:") {
				want = KindSSHCertificateIssue
			}
			if cert.seq < e.Seq || e.Kind != want || e.Subject != cert.serial {
				brokenErr = broken(cert.seq, "certificate %s names event %d as its issue event, but that event is %q of %q",
					cert.serial, cert.seq, e.Kind, e.Subject)
				return errBroken
			}
			rep.Certificates++
			cert, haveCert = nextCert()
		}
		rep.Events++
		prevSeq, prevHash = e.Seq, e.Hash
		last = Event{Seq: e.Seq, Hash: e.Hash}
		rep.Head = e.Hash
		return nil
	})
	if brokenErr != nil {
		return rep, brokenErr
	}
	if err != nil {
		return rep, err
	}
	if haveCert {
		return rep, broken(cert.seq, "certificate %s names event %d as its issue event, but the log ends at event %d (events deleted)",
			cert.serial, cert.seq, prevSeq)
	}
	if len(kept) > 0 {
		seq := slices.Max(slices.Collect(maps.Keys(kept)))
		return rep, broken(prevSeq+1, "the log ends at event %d, but a kept checkpoint names event %d (events deleted)", prevSeq, seq)
	}
	stop()
	if certErr != nil {
		return rep, certErr
	}
	for part := range rows.parts {
		if part == 1 {
			if err := reread(ctx, r, last, broken); err != nil {
				return rep, err
			}
		}
		if part > 0 {
			if err := rows.load(part); err != nil {
				return rep, err
			}
		}
		if err := verifyRows(ctx, r, rows, last, &rep); err != nil {
			return rep, err
		}
	}
	if rep.RowProblemCount > 0 {
		return rep, errs.New(errs.Rejected, "%d rows differ from the audit log, first %s", rep.RowProblemCount, rep.RowProblems[0])
	}
	return rep, nil
}

// RestoreData is the Data of a KindRestore event: the backup's head, the
// last event the restored store holds before the restore event.
type RestoreData struct {
	Seq  int64  `json:"seq"`
	Head string `json:"head"` // hex
}

// restored checks a restore event e: it must follow the backup's head it
// names. The checkpoints signed before it of events after the backup's head
// name events the restore dropped: they are set aside and counted in
// rep.LostToRestore, not failed.
func restored(e Event, prevSeq int64, prevHash []byte, kept map[int64][]Checkpoint, rep *Report,
	broken func(int64, string, ...any) error) error {
	var d RestoreData
	if err := json.Unmarshal(e.Data, &d); err != nil || d.Seq != prevSeq || d.Head != hex.EncodeToString(prevHash) {
		return broken(e.Seq, "restore event %d does not follow the backup head it names (%s): the events before it are not the backup's", e.Seq, e.Data)
	}
	rep.Restores = append(rep.Restores, e.Seq)
	for seq, cs := range kept {
		if seq <= d.Seq {
			continue
		}
		cs = slices.DeleteFunc(cs, func(c Checkpoint) bool {
			if c.Time.Before(e.Time) {
				rep.LostToRestore++
				return true
			}
			return false
		})
		if len(cs) == 0 {
			delete(kept, seq)
		} else {
			kept[seq] = cs
		}
	}
	return nil
}

// reread reads the events through head again: they must be those the
// first pass read, sealed, linked, and ending at head's hash.
func reread(ctx context.Context, r Reader, head Event, broken func(int64, string, ...any) error) error {
	errChanged, errStop := errors.New("changed"), errors.New("stop")
	prev := Event{Hash: Genesis}
	err := r.Events(ctx, func(e Event) error {
		if e.Seq != prev.Seq+1 || !e.Sealed() || !bytes.Equal(e.Prev, prev.Hash) || e.Seq == head.Seq && !bytes.Equal(e.Hash, head.Hash) {
			return errChanged
		}
		prev = Event{Seq: e.Seq, Hash: e.Hash}
		if e.Seq == head.Seq {
			return errStop
		}
		return nil
	})
	switch {
	case errors.Is(err, errChanged) || err == nil && prev.Seq != head.Seq:
		return broken(prev.Seq+1, "event %d changed or went missing while the rows were compared with the log", prev.Seq+1)
	case err != nil && !errors.Is(err, errStop):
		return err
	}
	return nil
}

// verifyRows compares the current rows of the part rows holds with their
// marks, the newest event of each row, and adds the differences to rep.
// Rows are read after the events: a row written meanwhile is explained by
// an event after head (the last one read), which it then reads too, with
// the event of each differing row for its name and columns.
func verifyRows(ctx context.Context, r Reader, rows *rowSet, head Event, rep *Report) error {
	type suspect struct {
		RowProblem
		id  rowID
		was [HashSize]byte // the row's hash in the event at Seq
		now Row            // the row now; no Hash for a row that is gone
	}
	var suspects []suspect
	err := r.States(ctx, rows.keep(), func(row Row) error {
		id := rows.id(row.Table, row.Key)
		if !rows.holds(id) {
			return nil
		}
		rep.Rows++
		m, ok := rows.marks[id]
		if !ok {
			suspects = append(suspects, suspect{RowProblem: RowProblem{Table: row.Table, Key: row.Key, Reason: "no event records this row"}, id: id, now: row})
			return nil
		}
		delete(rows.marks, id)
		if !bytes.Equal(row.Hash, m.hash[:]) {
			suspects = append(suspects, suspect{RowProblem{Table: row.Table, Key: row.Key, Seq: m.seq,
				Reason: fmt.Sprintf("row differs from event %d, the newest that records it", m.seq)}, id, m.hash, row})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for id, m := range rows.marks {
		suspects = append(suspects, suspect{RowProblem{Seq: m.seq,
			Reason: fmt.Sprintf("row recorded by event %d is gone", m.seq)}, id, m.hash, Row{}})
	}
	if len(suspects) > 0 {
		// The event at each suspect's Seq names it and its columns then.
		// Events appended since the scan may explain them: a row state
		// recorded by one of those, on a chain that goes on from head.
		at := map[int64][]int{}
		for i, s := range suspects {
			if s.Seq > 0 {
				at[s.Seq] = append(at[s.Seq], i)
			}
		}
		later := map[rowID][][]byte{}
		errStop := errors.New("stop")
		prev := head
		err := r.Events(ctx, func(e Event) error {
			if e.Seq <= head.Seq {
				for _, i := range at[e.Seq] {
					s := &suspects[i]
					for _, row := range e.State {
						if rows.id(row.Table, row.Key) == s.id && bytes.Equal(row.Hash, s.was[:]) {
							s.Table, s.Key = row.Table, row.Key
							if s.now.Hash != nil {
								s.Fields = s.now.DiffFields(row)
							}
						}
					}
				}
				return nil
			}
			if e.Seq != prev.Seq+1 || !e.Sealed() || !bytes.Equal(e.Prev, prev.Hash) {
				return errStop
			}
			for _, row := range e.State {
				id := rows.id(row.Table, row.Key)
				later[id] = append(later[id], row.Hash)
			}
			prev = e
			return nil
		})
		if err != nil && !errors.Is(err, errStop) {
			return err
		}
		suspects = slices.DeleteFunc(suspects, func(s suspect) bool {
			return s.now.Hash != nil && slices.ContainsFunc(later[s.id], func(h []byte) bool { return bytes.Equal(h, s.now.Hash) })
		})
	}
	rep.RowProblemCount += int64(len(suspects))
	for _, s := range suspects {
		rep.RowProblems = append(rep.RowProblems, s.RowProblem)
	}
	slices.SortFunc(rep.RowProblems, func(a, b RowProblem) int {
		return cmp.Or(strings.Compare(a.Table, b.Table), strings.Compare(a.Key, b.Key))
	})
	rep.RowProblems = slices.Clip(rep.RowProblems[:min(len(rep.RowProblems), maxRowProblems)])
	return nil
}
