package acme

import "signet/internal/errs"

// Error gives an error an ACME problem type more precise than its kind's
// (an order that is not ready, a bad CSR); the front end answers it with
// that type and the kind's HTTP status.
type Error struct {
	Type ProblemType
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an error of kind k with problem type typ.
func Errorf(typ ProblemType, k errs.Kind, format string, args ...any) error {
	return &Error{Type: typ, Err: errs.New(k, format, args...)}
}

// WithType gives err the problem type typ, keeping its kind.
func WithType(typ ProblemType, err error) error { return &Error{Type: typ, Err: err} }
