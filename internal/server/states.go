package server

import (
	"context"
	"net/http"

	"signet/internal/ca"
	"signet/internal/errs"
)

// maxUnlockBody bounds an unlock request: a PIN or passphrase and a name.
const maxUnlockBody = 4 << 10

// unlockJSON is the body of POST /api/v1/unlock and /api/v1/lock. The
// secret is held in memory only, never logged or stored.
type unlockJSON struct {
	Authority string `json:"authority,omitempty"`
	Token     string `json:"token,omitempty"`
	Secret    string `json:"secret,omitempty"` // unlock only
	Force     bool   `json:"force,omitempty"`  // unlock even on the token's final PIN try
}

// unlock: POST /api/v1/unlock gives a token's PIN (or the software keys'
// passphrase) whose source is 'unlock'; it is tried once.
func (s *Server) unlock(w http.ResponseWriter, r *http.Request, actor string) {
	in, ok := s.unlockRequest(w, r)
	if !ok {
		return
	}
	secret := []byte(in.Secret)
	defer clear(secret)
	if len(secret) == 0 {
		writeProblem(w, r, s.o.Log, errs.New(errs.Malformed, "request body: \"secret\" (the PIN or passphrase) is required"))
		return
	}
	t := ca.Target{Authority: in.Authority, Token: in.Token}
	if err := s.o.CA.Unlock(r.Context(), t, secret, in.Force, actor); err != nil {
		s.o.Log.Warn("unlock refused", "authority", in.Authority, "token", in.Token, "actor", actor, "err", err)
		writeProblem(w, r, s.o.Log, err)
		return
	}
	s.o.Log.Info("unlocked", "authority", in.Authority, "token", in.Token, "actor", actor)
	if s.o.SSH != nil {
		s.o.SSH.Reset()
	}
	s.Recheck(r.Context())
	s.status(w, r, actor)
}

// lock: POST /api/v1/lock forgets a PIN or passphrase given by unlock.
func (s *Server) lock(w http.ResponseWriter, r *http.Request, actor string) {
	in, ok := s.unlockRequest(w, r)
	if !ok {
		return
	}
	if in.Secret != "" {
		writeProblem(w, r, s.o.Log, errs.New(errs.Malformed, "request body: lock takes no secret"))
		return
	}
	if err := s.o.CA.Lock(r.Context(), ca.Target{Authority: in.Authority, Token: in.Token}, actor); err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	s.o.Log.Info("locked", "authority", in.Authority, "token", in.Token, "actor", actor)
	if s.o.SSH != nil {
		s.o.SSH.Reset()
	}
	s.Recheck(r.Context())
	s.status(w, r, actor)
}

func (s *Server) unlockRequest(w http.ResponseWriter, r *http.Request) (unlockJSON, bool) {
	var in unlockJSON
	body, err := readBodyMax(w, r, maxUnlockBody)
	if err == nil {
		err = decodeStrict(body, &in)
	}
	clear(body)
	if err != nil {
		writeProblem(w, r, s.o.Log, err)
		return in, false
	}
	return in, true
}

// Recheck opens every authority's key afresh and logs those that cannot
// sign (serve at start, on SIGHUP, after unlock and lock). If serve
// started with a self-signed certificate because the authority of its own
// was not ready, it asks that authority for one now.
func (s *Server) Recheck(ctx context.Context) {
	list, err := s.o.Store.Authorities(ctx)
	if err != nil {
		s.o.Log.Error("cannot list the authorities to check them", "err", err)
		return
	}
	for _, a := range list {
		st := s.o.CA.Check(ctx, a)
		switch st.State {
		case ca.Unlocked:
		case ca.Disabled:
			s.o.Log.Info("authority out of service", "authority", a.Name)
		default:
			s.o.Log.Warn("authority cannot sign; the others serve", "authority", a.Name, "state", st.State, "reason", st.Reason)
		}
	}
	if s.own != nil && s.selfSigned.Load() && s.o.CA.State(s.o.Authority).State == ca.Unlocked {
		go s.own.renew()
	}
}

// health: GET /health, public: serving, and each authority's state
// (reasons, which name keys and tokens, are in /api/v1/status).
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	h := map[string]any{"status": "ok"}
	if s.o.Warnings != nil {
		if ws := s.o.Warnings(r.Context()); len(ws) > 0 {
			h["warnings"] = ws
		}
	}
	if list, err := s.o.Store.Authorities(r.Context()); err == nil {
		states := make(map[string]ca.State, len(list))
		for _, a := range list {
			states[a.Name] = s.o.CA.State(a.Name).State
			if a.Disabled {
				states[a.Name] = ca.Disabled
			}
		}
		h["authorities"] = states
	}
	if s.selfSigned.Load() {
		h["self_signed"] = true
	}
	writeJSON(w, http.StatusOK, h)
}

// status: GET /api/v1/status, every authority's status (ca.Status).
func (s *Server) status(w http.ResponseWriter, r *http.Request, _ string) {
	list, err := s.o.CA.Status(r.Context(), s.o.Store)
	if err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"authorities": list})
}
