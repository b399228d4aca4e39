package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"signet/internal/errs"
)

// # Checkpoints
//
// A checkpoint is a (seq, head hash, time) of the log, signed with the
// audit key (Ed25519) as a C2SP signed note (c2sp.org/signed-note) whose
// text is a C2SP checkpoint (c2sp.org/tlog-checkpoint):
//
//	<origin>                       the key's name, below
//	<seq>                          the tree size: events up to and including it
//	<head hash, base64>
//	time <RFC 3339, UTC>           an extension line
//
// Kept outside the database (the home's checkpoints file, an auditor's
// copy), it lets Verify prove the chain still holds that event with that
// hash, so that deleting events older than it, or rewriting them, is caught.
// Events newer than the newest kept checkpoint can still be dropped unseen.

// A Checkpoint is a point of the log: event Seq has hash Hash.
type Checkpoint struct {
	Seq  int64
	Hash []byte
	Time time.Time
}

// KeyName is the note signer name of an audit key: "signet-audit-" and the
// first 16 hex digits of SHA-256 over the public key, so that checkpoints
// of two CAs never share an origin.
func KeyName(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "signet-audit-" + hex.EncodeToString(sum[:8])
}

// VerifierKey is the note verifier key of an audit key ("name+hash+key"),
// what `signet audit key` prints and an auditor keeps.
func VerifierKey(pub ed25519.PublicKey) (string, error) {
	vkey, err := note.NewEd25519VerifierKey(KeyName(pub), pub)
	if err != nil {
		return "", errs.Wrap(errs.Internal, err, "audit verifier key")
	}
	return vkey, nil
}

// CheckpointText is the note text of c under origin, the audit key's name
// (KeyName). The signing is package ca's (ca.SignCheckpoint), where every
// signature signet makes is.
func CheckpointText(origin string, c Checkpoint) string {
	return fmt.Sprintf("%s\n%d\n%s\ntime %s\n", origin, c.Seq, base64.StdEncoding.EncodeToString(c.Hash),
		c.Time.UTC().Format(time.RFC3339))
}

// OpenCheckpoint checks a signed checkpoint against the verifier key vkey
// and reads it.
func OpenCheckpoint(msg []byte, vkey string) (Checkpoint, error) {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return Checkpoint{}, errs.New(errs.Malformed, "audit key %q is not a note verifier key (signet audit key prints it): %v", vkey, err)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		if errors.As(err, &unverified) {
			return Checkpoint{}, errs.New(errs.Rejected, "the checkpoint is not signed by audit key %s", v.Name())
		}
		return Checkpoint{}, errs.New(errs.Rejected, "the checkpoint does not verify with audit key %s: %v", v.Name(), err)
	}
	lines := strings.Split(strings.TrimSuffix(n.Text, "\n"), "\n")
	bad := func(why string) (Checkpoint, error) {
		return Checkpoint{}, errs.New(errs.Malformed, "the checkpoint signed by %s is malformed: %s", v.Name(), why)
	}
	if len(lines) < 4 || lines[0] != v.Name() {
		return bad("want origin, seq, head hash and time lines, the origin the key's name")
	}
	var c Checkpoint
	if c.Seq, err = strconv.ParseInt(lines[1], 10, 64); err != nil || c.Seq < 0 {
		return bad("seq " + strconv.Quote(lines[1]))
	}
	if c.Hash, err = base64.StdEncoding.DecodeString(lines[2]); err != nil || len(c.Hash) != HashSize {
		return bad("head hash " + strconv.Quote(lines[2]))
	}
	ts, ok := strings.CutPrefix(lines[3], "time ")
	if c.Time, err = time.Parse(time.RFC3339, ts); !ok || err != nil {
		return bad("time line " + strconv.Quote(lines[3]))
	}
	return c, nil
}

// SplitNotes splits a file of signed notes appended one after another (the
// home's checkpoints file) into the notes.
func SplitNotes(b []byte) [][]byte {
	var out [][]byte
	for len(bytes.TrimSpace(b)) > 0 {
		// A note: its text, a blank line, then signature lines ("— ").
		i := bytes.Index(b, []byte("\n\n"))
		if i < 0 {
			return append(out, b)
		}
		end := i + 2
		for end < len(b) && bytes.HasPrefix(b[end:], []byte("\u2014 ")) {
			nl := bytes.IndexByte(b[end:], '\n')
			if nl < 0 {
				end = len(b)
				break
			}
			end += nl + 1
		}
		out = append(out, b[:end])
		b = b[end:]
	}
	return out
}

// A Checkpointer signs checkpoints of a running store's log: when asked
// (Checkpoint), after every revocation, every interval when the head moved, and
// once more when Run ends (shutdown). Each is appended to File, outside the
// database, and the latest is served (Latest).
type Checkpointer struct {
	// Sign signs a checkpoint with the audit key (ca.SignCheckpoint).
	Sign func(Checkpoint) ([]byte, error)
	File string
	// Head reads the store's newest event, and whether a certificate was
	// revoked after event after (store.Store.AuditHead).
	Head func(ctx context.Context, after int64) (seq int64, hash []byte, revoked bool, err error)
	// Lead, if set, tells whether this node signs checkpoints (on several
	// nodes, the one that signs CRLs).
	Lead func(ctx context.Context) (bool, error)
	Now  func() time.Time

	mu     sync.Mutex
	signed Checkpoint
	latest []byte
}

// Checkpoint signs a checkpoint of the head if it moved since the last
// one, and appends it to File.
func (c *Checkpointer) Checkpoint(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.Lead != nil {
		if lead, err := c.Lead(ctx); err != nil || !lead {
			return err
		}
	}
	seq, hash, _, err := c.Head(ctx, c.signed.Seq)
	if err != nil {
		return err
	}
	if seq == 0 || (c.latest != nil && seq == c.signed.Seq) {
		return nil
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	cp := Checkpoint{Seq: seq, Hash: hash, Time: now().UTC().Truncate(time.Second)}
	msg, err := c.Sign(cp)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(c.File, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "open the checkpoints file")
	}
	_, err = f.Write(msg)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "append to the checkpoints file %s", c.File)
	}
	c.signed, c.latest = cp, msg
	return nil
}

// Latest is the newest checkpoint this node signed, nil if none yet.
func (c *Checkpointer) Latest() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.latest
}

// Run signs at once, then after each revocation (looked for every poll)
// and every interval when the head moved, until ctx ends; then once more.
// Failures go to report.
func (c *Checkpointer) Run(ctx context.Context, poll, interval time.Duration, report func(error)) {
	sign := func(ctx context.Context) {
		if err := c.Checkpoint(ctx); err != nil {
			report(err)
		}
	}
	sign(ctx)
	tick := time.NewTicker(poll)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			final, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			sign(final)
			cancel()
			return
		case <-tick.C:
		}
		c.mu.Lock()
		after := c.signed.Seq
		c.mu.Unlock()
		_, _, revoked, err := c.Head(ctx, after)
		if err != nil {
			report(err)
			continue
		}
		if revoked || time.Since(last) >= interval {
			sign(ctx)
			last = time.Now()
		}
	}
}
