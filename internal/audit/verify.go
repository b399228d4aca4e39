package audit

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
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
}

// Report is the outcome of Verify.
type Report struct {
	Events       int64  // events read
	Certificates int64  // certificates cross-checked against their issue event
	Head         []byte // hash of the last intact event (Genesis for an empty log)
	BrokenSeq    int64  // first seq at which the log is broken; 0 if intact
	Reason       string // why, for a person; "" if intact
}

// Intact reports whether Verify found nothing wrong.
func (r Report) Intact() bool { return r.BrokenSeq == 0 && r.Reason == "" }

// HeadHex is Head in hex, the value an operator writes down or publishes so
// that truncating the log together with its certificates is caught later.
func (r Report) HeadHex() string { return hex.EncodeToString(r.Head) }

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
func Verify(ctx context.Context, r Reader) (Report, error) {
	rep := Report{Head: Genesis}
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
		if brokenErr != nil {
			return errBroken
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
	stop()
	if certErr != nil {
		return rep, certErr
	}
	return rep, nil
}
