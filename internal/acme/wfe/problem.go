package wfe

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"signet/internal/acme"
	"signet/internal/errs"
	"signet/internal/policy"
)

// typed is a problem of the JWS layer that also needs an HTTP status or
// the accepted algorithms (acme.Error carries the type alone).
type typed struct {
	typ        acme.ProblemType
	err        error
	status     int // 0: the kind's
	algorithms []string
}

func (t *typed) Error() string { return t.err.Error() }
func (t *typed) Unwrap() error { return t.err }

// problem returns an error of kind k with ACME type typ.
func problem(typ acme.ProblemType, k errs.Kind, format string, args ...any) error {
	return acme.Errorf(typ, k, format, args...)
}

// withType gives err the type typ, keeping its kind.
func withType(typ acme.ProblemType, err error) error { return acme.WithType(typ, err) }

// kindType and kindStatus are where a domain error kind becomes an ACME
// problem: the one place in the ACME front end (internal/server has its own
// for the admin API).
var kindType = map[errs.Kind]acme.ProblemType{
	errs.Internal:     acme.ServerInternal,
	errs.Malformed:    acme.Malformed,
	errs.NotFound:     acme.Malformed,
	errs.Unauthorized: acme.Unauthorized,
	errs.Rejected:     acme.RejectedIdentifier,
	errs.Conflict:     acme.Malformed,
	errs.Unavailable:  acme.ServerInternal,
	errs.RateLimited:  acme.RateLimited,
}

// signetTypes are the kinds whose problems keep signet's own type: an
// authority that cannot issue now (locked, out of service, its key away)
// is no ACME error, and a client is better told what it is.
var signetTypes = map[errs.Kind]bool{errs.Locked: true, errs.Disabled: true, errs.Unavailable: true}

var kindStatus = map[errs.Kind]int{
	errs.Internal:     http.StatusInternalServerError,
	errs.Malformed:    http.StatusBadRequest,
	errs.NotFound:     http.StatusNotFound,
	errs.Unauthorized: http.StatusForbidden,
	errs.Rejected:     http.StatusBadRequest,
	errs.Conflict:     http.StatusConflict,
	errs.Unavailable:  http.StatusServiceUnavailable,
	errs.RateLimited:  http.StatusTooManyRequests,
	errs.Locked:       http.StatusServiceUnavailable,
	errs.Disabled:     http.StatusServiceUnavailable,
}

// toProblem turns any error into the problem document to send.
func toProblem(err error) *acme.Problem {
	kind := errs.KindOf(err)
	typ := kindType[kind]
	status := kindStatus[kind]
	var algorithms []string
	var ae *acme.Error
	if errors.As(err, &ae) {
		typ = ae.Type
	}
	var t *typed
	if errors.As(err, &t) {
		typ, algorithms = t.typ, t.algorithms
		if t.status != 0 {
			status = t.status
		}
	}
	p := &acme.Problem{Type: acme.ErrorNS + string(typ), Status: status, Detail: err.Error(), Algorithms: algorithms}
	if t == nil && signetTypes[kind] {
		p.Type = "urn:signet:error:" + kind.String()
	}
	if kind == errs.Internal {
		p.Detail = "internal error"
	}
	// One subproblem per refused identifier (RFC 8555 §6.7.1), named as
	// the order named it (a wildcard keeps its "*.").
	var refusals policy.Refusals
	if errors.As(err, &refusals) {
		for _, r := range refusals {
			id := &acme.Identifier{Type: r.Type, Value: r.Name}
			p.Subproblems = append(p.Subproblems, acme.Problem{
				Type: acme.ErrorNS + string(acme.RejectedIdentifier), Detail: r.String(), Identifier: id,
			})
		}
	}
	return p
}

// problemName is the type of the problem err is sent as, without the
// ACME prefix (malformed, rateLimited, urn:signet:error:locked), for logs.
func problemName(err error) string { return strings.TrimPrefix(toProblem(err).Type, acme.ErrorNS) }

// storedProblem rebuilds a problem kept with a challenge or an order.
func storedProblem(typ, detail string) *acme.Problem {
	if typ == "" {
		return nil
	}
	return &acme.Problem{Type: acme.ErrorNS + typ, Detail: detail}
}

// problemType is the media type of problem documents (RFC 7807).
const problemType = "application/problem+json"

func (w *WFE) writeProblem(rw http.ResponseWriter, r *http.Request, err error) {
	p := toProblem(err)
	if k := errs.KindOf(err); p.Status >= 500 && k != errs.Locked && k != errs.Disabled {
		w.log.Error("acme request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if after := errs.RetryAfter(err); after > 0 {
		rw.Header().Set("Retry-After", strconv.Itoa(after))
	} else if p.Type == acme.ErrorNS+string(acme.RateLimited) || p.Status == http.StatusServiceUnavailable {
		rw.Header().Set("Retry-After", "5")
	}
	var l *located
	if errors.As(err, &l) {
		rw.Header().Set("Location", l.location)
	}
	w.endpoints[r.Pattern].Problem(p.Type)
	rw.Header()["Content-Type"] = []string{problemType}
	rw.WriteHeader(p.Status)
	b, _ := json.Marshal(p)
	rw.Write(b)
}
