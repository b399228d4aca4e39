package server

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"

	"signet/internal/errs"
)

// problem is an RFC 7807 problem document.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// statusOf is the one place where a domain error kind becomes an HTTP status.
var statusOf = map[errs.Kind]int{
	errs.Internal:     http.StatusInternalServerError,
	errs.Malformed:    http.StatusBadRequest,
	errs.NotFound:     http.StatusNotFound,
	errs.Unauthorized: http.StatusUnauthorized,
	errs.Rejected:     http.StatusForbidden,
	errs.Conflict:     http.StatusConflict,
	errs.Unavailable:  http.StatusServiceUnavailable,
	errs.RateLimited:  http.StatusTooManyRequests,
	errs.Locked:       http.StatusServiceUnavailable,
	errs.Disabled:     http.StatusServiceUnavailable,
}

// writeProblem answers err as a problem document. Internal errors are
// logged in full and answered without detail.
func writeProblem(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	kind := errs.KindOf(err)
	p := problem{Type: "urn:signet:error:" + kind.String(), Status: statusOf[kind], Title: http.StatusText(statusOf[kind])}
	if kind == errs.Internal || kind == errs.Unavailable {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if kind != errs.Internal {
		p.Detail = err.Error()
	}
	if after := errs.RetryAfter(err); after > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(after))
	}
	if kind == errs.Unauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="signet"`)
	}
	if p.Status == http.StatusServiceUnavailable {
		// An authority locked, out of service or whose token is away: an
		// operator's action brings it back; ask again in a while.
		w.Header().Set("Retry-After", "60")
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(p.Status)
	json.NewEncoder(w).Encode(p)
}
