package store

import (
	"signet/internal/audit"
	"signet/internal/errs"
)

// PrepareSetKeyURI prepares a SetKeyURI call: the event's subject is the
// new URI.
func PrepareSetKeyURI(from, to string, ev audit.Event) (audit.Event, error) {
	if from == "" || to == "" || from == to {
		return ev, errs.New(errs.Malformed, "rewriting a key URI needs two different, non-empty URIs")
	}
	return PrepareEvent(ev, audit.KindKeyURIRewrite, to, "")
}

// CheckSetKeyURI refuses a rewrite that matches no row.
func CheckSetKeyURI(rows int) error {
	if rows == 0 {
		return errs.New(errs.NotFound, "no authority or SSH CA key has that key URI")
	}
	return nil
}
