package server

import (
	"context"
	"net/http"
	"strings"

	"signet/internal/ca"
	"signet/internal/console"
	"signet/internal/errs"
	"signet/internal/store"
)

// mountConsole serves the web console at /ui/ (internal/console) and
// sends / there. Its sign-ins go through identify and the API's limits.
func (s *Server) mountConsole() {
	st, ok := s.o.Store.(console.Store)
	if !ok { // every store.Store is one; a test's partial store has no console
		return
	}
	c := console.New(console.Options{
		CA: s.o.CA, Store: st, Log: s.o.Log, Authenticate: s.operator, Recheck: s.recheck, Limits: s.o.Limits, EAB: s.o.EAB, Audit: s.o.Audit,
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

// operator is who signs in to the console with token, or with none by the
// request's client certificate, as the API would name them (identify):
// named operators by their name, the admin token as "admin-token", an
// admin certificate naming no operator as "client-cert:CN". The console
// audits them as "ui:" and that name.
func (s *Server) operator(r *http.Request, token string) (console.Operator, error) {
	token = strings.TrimSpace(token)
	if token == "" && (s.adminCA == nil || r.TLS == nil || len(r.TLS.PeerCertificates) == 0) {
		return console.Operator{}, errs.New(errs.Unauthorized, "give your token (or present a client certificate of the admin authority)")
	}
	actor, role, err := s.identify(r, token, token != "")
	if err != nil {
		return console.Operator{}, err
	}
	op := consoleOperator(actor, role)
	if token == "" {
		op.Certificate = ca.Serial(r.TLS.PeerCertificates[0].SerialNumber)
	}
	return op, nil
}

// consoleOperator is the console's operator for an API actor and role.
func consoleOperator(actor, role string) console.Operator {
	name := strings.TrimPrefix(strings.TrimPrefix(actor, "operator:"), "api:")
	return console.Operator{ID: actor, Name: name, Role: role}
}

// recheck is who a console session's operator (its actor, see identify)
// is now: a named operator as the store has it (errs.NotFound once
// removed); the admin token and admin certificates naming no operator
// stay the built-in admin. A session signed in with a client certificate
// (its serial) lasts while the store has that certificate valid and
// unexpired in the admin authority, as certAdmin asks at sign-in.
func (s *Server) recheck(ctx context.Context, id, certificate string) (console.Operator, error) {
	if certificate != "" {
		if ok, err := s.adminCertRecorded(ctx, certificate); err != nil {
			return console.Operator{}, err
		} else if !ok {
			return console.Operator{}, errs.New(errs.NotFound, "client certificate %s is no longer a valid certificate of admin authority %q", certificate, s.o.AdminAuthority)
		}
	}
	op := consoleOperator(id, store.RoleAdmin)
	if name, ok := strings.CutPrefix(id, "operator:"); ok {
		o, err := s.o.Store.Operator(ctx, name)
		if err != nil {
			return console.Operator{}, err
		}
		op.Role = o.Role
	}
	op.Certificate = certificate
	return op, nil
}
