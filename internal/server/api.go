package server

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"

	"signet/internal/ca"
	"signet/internal/config"
	"signet/internal/errs"
	"signet/internal/kms"
	"signet/internal/profile"
)

// maxBody bounds every request body the API reads.
const maxBody = 64 << 10

// issueJSON is the JSON form of an issuance request.
type issueJSON struct {
	CSR         string   `json:"csr"` // PEM
	CommonName  string   `json:"cn,omitempty"`
	DNS         []string `json:"dns,omitempty"`
	IP          []string `json:"ip,omitempty"`
	Email       []string `json:"email,omitempty"`
	XMPPDomains []string `json:"xmpp_domains,omitempty"`
	Usage       string   `json:"usage,omitempty"`
	Validity    string   `json:"validity,omitempty"`
}

// decodeIssueRequest reads an issuance request: a bare CSR
// (application/pkcs10, DER or PEM) or JSON with a PEM CSR and options.
func decodeIssueRequest(contentType string, body []byte) (ca.Request, error) {
	var req ca.Request
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return req, errs.New(errs.Malformed, "Content-Type %q: send application/pkcs10 or application/json", contentType)
	}
	switch mt {
	case "application/pkcs10", "application/x-pem-file":
		req.CSR, err = ca.ParseCSR(body)
		return req, err
	case "application/json":
	default:
		return req, errs.New(errs.Malformed, "Content-Type %q: send application/pkcs10 or application/json", mt)
	}
	var in issueJSON
	if err := decodeStrict(body, &in); err != nil {
		return req, err
	}
	if in.CSR == "" {
		return req, errs.New(errs.Malformed, "request body: \"csr\" (PEM) is required")
	}
	if req.CSR, err = ca.ParseCSR([]byte(in.CSR)); err != nil {
		return req, err
	}
	req.CommonName, req.DNSNames, req.EmailAddresses = in.CommonName, in.DNS, in.Email
	req.XMPPDomains, req.Usage = in.XMPPDomains, profile.Usage(in.Usage)
	for _, s := range in.IP {
		ip := net.ParseIP(s)
		if ip == nil {
			return req, errs.New(errs.Malformed, "ip %q is not an IP address", s)
		}
		req.IPAddresses = append(req.IPAddresses, ip)
	}
	if in.Validity != "" {
		if req.Validity, err = config.ParseDuration(in.Validity); err != nil {
			return req, err
		}
	}
	return req, nil
}

// decodeStrict decodes a request body that must be exactly one JSON value
// with no fields v does not know.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errs.Wrap(errs.Malformed, err, "request body")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errs.New(errs.Malformed, "request body: more than one JSON value")
	}
	return nil
}

func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return readBodyMax(w, r, maxBody)
}

// readBodyMax reads a request body of at most limit bytes.
func readBodyMax(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, errs.New(errs.Malformed, "request body is larger than %d bytes", limit)
	}
	if err != nil {
		return nil, errs.Wrap(errs.Malformed, err, "reading the request body")
	}
	return body, nil
}

// issue: POST /api/v1/authorities/{name}/certificates → PEM chain.
func (s *Server) issue(w http.ResponseWriter, r *http.Request, actor string) {
	body, err := readBody(w, r)
	if err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	req, err := decodeIssueRequest(r.Header.Get("Content-Type"), body)
	if err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	req.Authority, req.Actor = r.PathValue("name"), actor
	if err := s.o.Limits.Certificate(req.Authority); err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	iss, err := s.o.CA.Issue(r.Context(), req)
	if err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	s.o.Log.Info("issued", "serial", iss.Serial, "authority", req.Authority, "requester", actor,
		"identifiers", identifiers(iss.DER), "not_after", iss.NotAfter)
	var out bytes.Buffer
	for _, der := range append([][]byte{iss.DER}, iss.Chain...) {
		pem.Encode(&out, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	w.Header().Set("Content-Type", "application/pem-certificate-chain")
	w.Header().Set("Location", "/api/v1/certificates/"+iss.Serial)
	w.WriteHeader(http.StatusCreated)
	w.Write(out.Bytes())
}

type authorityOut struct {
	Name     string          `json:"name"`
	Purpose  string          `json:"purpose"`
	Key      string          `json:"key"`
	Policy   json.RawMessage `json:"policy,omitempty"`
	Created  time.Time       `json:"created"`
	CertPEM  string          `json:"certificate,omitempty"`
	Parent   string          `json:"parent,omitempty"`
	Self     bool            `json:"self_signed,omitempty"` // its own trust anchor: no parent
	Validity string          `json:"default_validity,omitempty"`
	ACME     bool            `json:"acme"`
	EAB      bool            `json:"require_eab"`
	Enabled  bool            `json:"enabled"`
	// What signet status shows of it (ca.Status): the same answer as
	// GET /api/v1/status, beside what this endpoint gave before.
	State    ca.State     `json:"state"`
	Reason   string       `json:"reason,omitempty"`
	Location kms.Location `json:"key_location"`
	NotAfter *time.Time   `json:"not_after,omitempty"`
	Issued   int          `json:"issued"`
	Revoked  int          `json:"revoked"`
}

func (s *Server) authorities(w http.ResponseWriter, r *http.Request, _ string) {
	list, err := s.o.Store.Authorities(r.Context())
	if err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	statuses, err := s.o.CA.Status(r.Context(), s.o.Store)
	if err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	byName := make(map[string]ca.AuthorityStatus, len(statuses))
	for _, st := range statuses {
		byName[st.Name] = st
	}
	out := make([]authorityOut, len(list))
	for i, a := range list {
		st := byName[a.Name]
		out[i] = authorityOut{
			Name: a.Name, Purpose: a.Purpose, Key: kms.Redact(a.KeyURI), Policy: a.Policy, Created: a.CreatedAt, Parent: a.Parent,
			Self: ca.SelfSigned(a), ACME: a.ACME, EAB: a.RequireEAB, Enabled: !a.Disabled,
			State: st.State, Reason: st.Reason, Location: st.Key, NotAfter: st.NotAfter, Issued: st.Issued, Revoked: st.Revoked,
		}
		if len(a.CertDER) > 0 { // SSH authorities have none
			out[i].CertPEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.CertDER}))
		}
		if a.DefaultValidity > 0 {
			out[i].Validity = a.DefaultValidity.String()
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// identifiers lists the names a certificate holds, for the log:
// dns:NAME, ip:ADDRESS, email:ADDRESS.
func identifiers(der []byte) string {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return ""
	}
	var ids []string
	for _, n := range c.DNSNames {
		ids = append(ids, "dns:"+n)
	}
	for _, ip := range c.IPAddresses {
		ids = append(ids, "ip:"+ip.String())
	}
	for _, e := range c.EmailAddresses {
		ids = append(ids, "email:"+e)
	}
	return strings.Join(ids, ",")
}
