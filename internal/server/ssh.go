package server

import (
	"context"
	"encoding/base64"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

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
	iss, err := s.issueSSH(r.Context(), req)
	if err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	s.o.Log.Info("issued SSH certificate", "serial", iss.Serial, "authority", req.Authority, "key_id", iss.Cert.KeyId)
	writeSSHCertificate(w, r, iss)
}

// issueSSH issues req if its authority is in service and within the
// certificate rate limit: what the admin route and host renewal share.
func (s *Server) issueSSH(ctx context.Context, req sshca.Request) (*sshca.Issued, error) {
	if err := s.o.CA.InService(ctx, req.Authority); err != nil {
		return nil, err
	}
	if err := s.o.Limits.Certificate(req.Authority); err != nil {
		return nil, err
	}
	return s.o.SSH.Issue(ctx, req)
}

// writeSSHCertificate answers an issued certificate: its line (text/plain),
// or JSON with its serial when asked.
func writeSSHCertificate(w http.ResponseWriter, r *http.Request, iss *sshca.Issued) {
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

// maxHostRenewal bounds a host renewal body: a certificate (at most
// sshca.MaxPublicKeySize), a nonce and a signature, in JSON.
const maxHostRenewal = 2 * sshca.MaxPublicKeySize

// hostRenewalJSON is the body of POST /api/v1/ssh/host-renewal.
type hostRenewalJSON struct {
	Certificate string `json:"certificate"` // the -cert.pub line
	Nonce       string `json:"nonce"`       // from GET /api/v1/ssh/host-renewal
	Signature   string `json:"signature"`   // base64 of the SSH signature blob over sshca.RenewalMessage
}

// decodeHostRenewal reads a host renewal body strictly.
func decodeHostRenewal(body []byte) (sshca.HostRenewal, error) {
	var in hostRenewalJSON
	if err := decodeStrict(body, &in); err != nil {
		return sshca.HostRenewal{}, err
	}
	if in.Certificate == "" || in.Nonce == "" || in.Signature == "" {
		return sshca.HostRenewal{}, errs.New(errs.Malformed, "request body: \"certificate\", \"nonce\" and \"signature\" are all required")
	}
	cert, err := sshca.ParseCertificate([]byte(in.Certificate))
	if err != nil {
		return sshca.HostRenewal{}, err
	}
	blob, err := base64.StdEncoding.DecodeString(in.Signature)
	if err != nil {
		return sshca.HostRenewal{}, errs.New(errs.Malformed, "\"signature\" is not base64: give the SSH signature blob in standard base64")
	}
	sig := new(ssh.Signature)
	if err := ssh.Unmarshal(blob, sig); err != nil {
		return sshca.HostRenewal{}, errs.New(errs.Malformed, "\"signature\" is not an SSH signature blob (string format, string signature)")
	}
	return sshca.HostRenewal{Cert: cert, Nonce: in.Nonce, Signature: sig}, nil
}

// sshHostRenewalNonce: GET /api/v1/ssh/host-renewal → a nonce for one
// renewal. Public: the proof is the host key's signature over it.
func (s *Server) sshHostRenewalNonce(w http.ResponseWriter, r *http.Request) {
	n, err := s.o.SSH.RenewalNonce(r.Context())
	if err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"nonce": n, "lifetime_seconds": int(sshca.RenewalNonceLifetime.Seconds())})
}

// sshHostRenewal: POST /api/v1/ssh/host-renewal → the host's new
// certificate, as sshSign answers. No token: a host proves it holds the
// key of a certificate this signet issued, still valid (HostRenewalRequest).
// A failed proof counts as a failed authentication of its source address.
func (s *Server) sshHostRenewal(w http.ResponseWriter, r *http.Request) {
	if err := s.o.Limits.CanAuthenticate(r); err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	body, err := readBodyMax(w, r, maxHostRenewal)
	if err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	ren, err := decodeHostRenewal(body)
	if err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	req, err := s.o.SSH.HostRenewalRequest(r.Context(), ren)
	if err != nil {
		if errs.KindOf(err) == errs.Unauthorized {
			s.o.Limits.AuthenticationFailed(r)
		}
		writeProblem(w, r, s.o.Log, err)
		return
	}
	if err := s.o.Limits.HostRenewal(ssh.FingerprintSHA256(req.PublicKey)); err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	iss, err := s.issueSSH(r.Context(), req)
	if err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	s.o.Log.Info("renewed SSH host certificate", "serial", iss.Serial, "previous", ren.Cert.Serial, "authority", req.Authority, "key_id", iss.Cert.KeyId)
	writeSSHCertificate(w, r, iss)
}
