package server

import (
	"context"
	"net/http"
	"strings"

	"signet/internal/console"
	"signet/internal/errs"
)

// mountConsole serves the web console at /ui/ (internal/console) and
// sends / there. Its sign-ins go through operator and the API's limits.
func (s *Server) mountConsole() {
	st, ok := s.o.Store.(console.Store)
	if !ok { // every store.Store is one; a test's partial store has no console
		return
	}
	c := console.New(console.Options{
		CA: s.o.CA, Store: st, Log: s.o.Log, Authenticate: s.operator, Limits: s.o.Limits, EAB: s.o.EAB,
		StatusOf: func(err error) int { return statusOf[errs.KindOf(err)] },
		Changed: func(ctx context.Context) {
			if s.o.SSH != nil {
				s.o.SSH.Reset()
			}
			s.Recheck(ctx)
		},
	})
	s.mux.Handle("/ui/", c)
	s.mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusSeeOther))
}

// operator maps what a person presents to the console to an operator:
// the admin token, or with none a valid client certificate of the admin
// authority, is the built-in admin. This is the one place that decides.
func (s *Server) operator(r *http.Request, token string) (console.Operator, error) {
	token = strings.TrimSpace(token)
	switch {
	case token != "":
		if !s.isAdminToken(token) {
			return console.Operator{}, errs.New(errs.Unauthorized, "that token is not valid here")
		}
		return console.Operator{Name: "admin", Role: console.Admin}, nil
	case s.adminCA != nil && r.TLS != nil && len(r.TLS.PeerCertificates) > 0:
		if _, err := s.certAdmin(r); err != nil {
			return console.Operator{}, err
		}
		return console.Operator{Name: r.TLS.PeerCertificates[0].Subject.CommonName, Role: console.Admin}, nil
	}
	return console.Operator{}, errs.New(errs.Unauthorized, "give your token (or present a client certificate of the admin authority)")
}
