package audit

import (
	"context"
	"errors"
	"sync"
	"time"

	"signet/internal/errs"
)

// Verification is the outcome of one background Verify: what
// GET /api/v1/audit/verification answers.
type Verification struct {
	// "intact", "broken" (the log or rows disagree), "failed" (could not
	// read) or "follower" (another node of a shared store verifies it).
	State    string    `json:"state"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	HeadSeq  int64     `json:"head_seq"` // the events verified: 1 through HeadSeq
	Head     string    `json:"head"`     // hash of the last intact event, hex
	Events   int64     `json:"events"`
	Certs    int64     `json:"certificates"`
	Rows     int64     `json:"rows"`
	// Why it is not intact, as Report has it.
	BrokenSeq       int64        `json:"broken_seq,omitempty"`
	Reason          string       `json:"reason,omitempty"`
	RowProblems     []RowProblem `json:"row_problems,omitempty"`
	RowProblemCount int64        `json:"row_problem_count,omitempty"`
	Error           string       `json:"error,omitempty"`
}

// JobVerify is the job of the node that verifies a shared store's log
// (store.Shared.Lead): the others need not pay for the same verification.
const JobVerify = "audit-verify"

// Watch verifies the log in the background, every interval, and keeps the
// latest outcome: a server notices a tampered database without anyone
// running 'signet audit verify'.
type Watch struct {
	mu     sync.Mutex
	latest *Verification
	Every  time.Duration // between the end of one verification and the start of the next
	// Lead, if set, is asked before each verification whether this node
	// leads JobVerify on its shared store; a node that does not skips it,
	// and its outcome is "follower".
	Lead func(context.Context) (bool, error)
}

// Latest is the newest finished verification; false before the first.
func (w *Watch) Latest() (Verification, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.latest == nil {
		return Verification{}, false
	}
	return *w.latest, true
}

// Run verifies r at once, then every w.Every, until ctx ends; report is
// told of each one that is not intact.
func (w *Watch) Run(ctx context.Context, r Reader, report func(Verification)) {
	for {
		v := w.Once(ctx, r)
		if ctx.Err() != nil {
			return
		}
		if v.State != "intact" && v.State != "follower" && report != nil {
			report(v)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.Every):
		}
	}
}

// Once verifies r now, unless another node leads the job (Lead), and keeps
// the outcome as the latest.
func (w *Watch) Once(ctx context.Context, r Reader) Verification {
	v := Verification{Started: time.Now().UTC()}
	if w.Lead != nil {
		lead, err := w.Lead(ctx)
		if err != nil || !lead {
			v.Finished, v.State = time.Now().UTC(), "follower"
			if err != nil {
				v.State, v.Error = "failed", err.Error()
			}
			return w.keep(ctx, v, err)
		}
	}
	rep, err := Verify(ctx, r)
	v.Finished = time.Now().UTC()
	v.HeadSeq, v.Head, v.Events, v.Certs, v.Rows = rep.Events, rep.HeadHex(), rep.Events, rep.Certificates, rep.Rows
	v.BrokenSeq, v.Reason, v.RowProblems, v.RowProblemCount = rep.BrokenSeq, rep.Reason, rep.RowProblems, rep.RowProblemCount
	switch {
	case err == nil && rep.Intact():
		v.State = "intact"
	case err == nil || errs.KindOf(err) == errs.Rejected:
		v.State = "broken"
	default:
		v.State = "failed"
		v.Error = err.Error()
	}
	if rep.BrokenSeq > 0 {
		v.HeadSeq = rep.BrokenSeq - 1
	}
	return w.keep(ctx, v, err)
}

// keep makes v the latest outcome, unless err is ctx's end.
func (w *Watch) keep(ctx context.Context, v Verification, err error) Verification {
	if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return v // cut short: not an outcome
	}
	w.mu.Lock()
	w.latest = &v
	w.mu.Unlock()
	return v
}
