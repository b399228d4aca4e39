package server

import (
	"net/http"
	"strings"
	"time"

	"signet/internal/config"
	"signet/internal/errs"
	"signet/internal/sshca"
	"signet/internal/store"
)

// sshSignJSON is the JSON form of an SSH certificate request.
type sshSignJSON struct {
	PublicKey         string   `json:"public_key"` // authorized_keys form, as in a .pub file
	Principals        []string `json:"principals"`
	Type              string   `json:"type"` // host or user; default: the authority's
	Validity          string   `json:"validity,omitempty"`
	KeyID             string   `json:"key_id,omitempty"`
	ForceCommand      string   `json:"force_command,omitempty"`
	SourceAddress     []string `json:"source_address,omitempty"`
	NoPortForwarding  bool     `json:"no_port_forwarding,omitempty"`
	NoAgentForwarding bool     `json:"no_agent_forwarding,omitempty"`
	NoX11Forwarding   bool     `json:"no_x11_forwarding,omitempty"`
	NoPTY             bool     `json:"no_pty,omitempty"`
	NoUserRC          bool     `json:"no_user_rc,omitempty"`
}

// decodeSSHSignRequest reads the JSON body strictly.
func decodeSSHSignRequest(body []byte) (sshca.Request, error) {
	var req sshca.Request
	var in sshSignJSON
	if err := decodeStrict(body, &in); err != nil {
		return req, err
	}
	if in.PublicKey == "" {
		return req, errs.New(errs.Malformed, "request body: \"public_key\" (the .pub line) is required")
	}
	pub, err := sshca.ParsePublicKey([]byte(in.PublicKey))
	if err != nil {
		return req, err
	}
	switch in.Type {
	case "", string(store.SSHHostCert), string(store.SSHUserCert):
	default:
		return req, errs.New(errs.Malformed, "type %q: want host or user", in.Type)
	}
	req = sshca.Request{
		PublicKey: pub, Type: store.SSHCertType(in.Type), Principals: in.Principals, KeyID: in.KeyID,
		Options: sshca.CertOptions{ForceCommand: in.ForceCommand, SourceAddresses: in.SourceAddress,
			NoPortForwarding: in.NoPortForwarding, NoAgentForwarding: in.NoAgentForwarding,
			NoX11Forwarding: in.NoX11Forwarding, NoPTY: in.NoPTY, NoUserRC: in.NoUserRC},
	}
	if in.Validity != "" {
		if req.Validity, err = config.ParseDuration(in.Validity); err != nil {
			return req, err
		}
	}
	return req, nil
}

// sshSign: POST /api/v1/authorities/{name}/ssh/certificates → the
// certificate line (text/plain), or JSON with its serial when asked.
func (s *Server) sshSign(w http.ResponseWriter, r *http.Request, actor string) {
	body, err := readBody(w, r)
	if err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	req, err := decodeSSHSignRequest(body)
	if err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	req.Authority, req.Actor = r.PathValue("name"), actor
	if err := s.o.CA.InService(r.Context(), req.Authority); err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	if err := s.o.Limits.Certificate(req.Authority); err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	iss, err := s.o.SSH.Issue(r.Context(), req)
	if err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	s.o.Log.Info("issued SSH certificate", "serial", iss.Serial, "authority", req.Authority, "key_id", iss.Cert.KeyId)
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		writeJSON(w, http.StatusCreated, map[string]any{
			"serial": iss.Serial, "key_id": iss.Cert.KeyId, "principals": iss.Cert.ValidPrincipals,
			"valid_after":  time.Unix(int64(iss.Cert.ValidAfter), 0).UTC(),
			"valid_before": time.Unix(int64(iss.Cert.ValidBefore), 0).UTC(),
			"certificate":  strings.TrimSpace(string(iss.Line())),
		})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusCreated)
	w.Write(iss.Line())
}

// sshTrust: GET /api/v1/authorities/{name}/ssh/trust → the lines to
// install. Public, like the KRL: both are meant to be fetched by hosts.
func (s *Server) sshTrust(w http.ResponseWriter, r *http.Request) {
	lines, err := s.o.SSH.Trust(r.Context(), r.PathValue("name"), r.URL.Query().Get("pattern"))
	if err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte(lines))
}

// sshKRL: GET /api/v1/authorities/{name}/ssh/krl → the OpenSSH KRL.
func (s *Server) sshKRL(w http.ResponseWriter, r *http.Request) {
	krl, err := s.o.SSH.KRL(r.Context(), r.PathValue("name"))
	if err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(krl)
}
