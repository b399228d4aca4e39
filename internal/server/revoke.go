package server

import (
	"bytes"
	"net/http"
	"time"

	"signet/internal/ca"
)

// revoke: POST /api/v1/certificates/{serial}/revoke with an optional JSON
// body {"reason": "keyCompromise"}, through ca.Revoke like the CLI.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request, actor string) {
	body, err := readBody(w, r)
	if err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	var in struct {
		Reason string `json:"reason"`
	}
	if len(bytes.TrimSpace(body)) > 0 {
		if err := decodeStrict(body, &in); err != nil {
			writeProblem(w, r, s.o.Log, err)
			return
		}
	}
	code := 0
	if in.Reason != "" {
		if code, err = ca.ParseReason(in.Reason); err != nil {
			writeProblem(w, r, s.o.Log, err)
			return
		}
	}
	c, err := s.o.CA.Revoke(r.Context(), r.PathValue("serial"), code, actor)
	if err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	s.o.Log.Info("revoked", "serial", c.Serial, "authority", c.Authority, "reason", ca.ReasonName(c.RevocationReason), "actor", actor)
	writeJSON(w, http.StatusOK, map[string]any{
		"serial": c.Serial, "status": c.Status, "reason": ca.ReasonName(c.RevocationReason), "revoked_at": c.RevokedAt.UTC().Format(time.RFC3339),
	})
}
