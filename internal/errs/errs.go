// Package errs owns signet's one error type: a kind that says what went
// wrong in domain terms, a message a person can act on, and the cause.
// The HTTP edge turns a kind into a problem document in exactly one place;
// nothing below it knows about status codes.
package errs

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies an error for callers that must react to it.
type Kind int

const (
	Internal     Kind = iota // a bug or an unexpected failure; details stay in the logs
	Malformed                // the input cannot be parsed or is inconsistent
	NotFound                 // the named thing does not exist
	Unauthorized             // the caller may not do this
	Rejected                 // well-formed, but policy or profile refuses it
	Conflict                 // the thing exists already or is in the wrong state
	Unavailable              // a dependency (token, database) cannot be reached now
	RateLimited              // too many requests
	Locked                   // the key needs a PIN or passphrase an operator has not given yet (signet unlock)
	Disabled                 // the authority is out of service (signet authority disable)
)

var kindNames = [...]string{"internal", "malformed", "not-found", "unauthorized", "rejected", "conflict", "unavailable", "rate-limited", "locked", "disabled"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is signet's error. Msg is safe to show to the caller; Err may hold
// internal detail and is shown only where Kind is not Internal.
type Error struct {
	Kind Kind
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	switch {
	case e.Msg == "" && e.Err != nil:
		return e.Err.Error()
	case e.Err != nil:
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Is lets errors.Is(err, errs.NotFound) style checks work through wrapping:
// errors.Is(err, &errs.Error{Kind: errs.NotFound}).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Msg == "" && t.Err == nil && t.Kind == e.Kind
}

// New returns an error of kind k with a formatted message.
func New(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// Wrap returns an error of kind k that explains err with a formatted message.
func Wrap(k Kind, err error, format string, args ...any) error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...), Err: err}
}

// KindOf reports the kind of the first *Error in err's chain, or Internal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// later is an error worth retrying after a while.
type later struct {
	error
	after time.Duration
}

func (l *later) Unwrap() error { return l.error }

// Later marks err as worth retrying after the given time: a rate limit, or
// a conflict that persisted. The HTTP edge answers it with Retry-After.
func Later(err error, after time.Duration) error { return &later{err, after} }

// RetryAfter is how long err says to wait before retrying, rounded up to
// whole seconds (at least one); 0 if it does not say.
func RetryAfter(err error) int {
	var l *later
	if !errors.As(err, &l) {
		return 0
	}
	return max(1, int((l.after+time.Second-1)/time.Second))
}
