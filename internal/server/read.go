package server

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"signet/internal/audit"
	"signet/internal/ca"
	"signet/internal/config"
	"signet/internal/errs"
	"signet/internal/kms"
	"signet/internal/profile"
	"signet/internal/store"
)

// Pagination of the read API: at most maxLimit rows a page, defaultLimit
// unless asked; maxParam bounds every other query parameter.
const (
	defaultLimit = 50
	maxLimit     = 500
	maxParam     = 256
)

// params reads a query string that may hold only the given parameters, each
// at most once and at most maxParam bytes long.
type params struct {
	v   url.Values
	err error
}

func readParams(r *http.Request, allowed ...string) *params {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return &params{err: errs.New(errs.Malformed, "query string: %v", err)}
	}
	for name, vs := range v {
		switch {
		case !slices.Contains(allowed, name):
			return &params{err: errs.New(errs.Malformed, "query parameter %q is not known here; use %s", limitText(name), strings.Join(allowed, ", "))}
		case len(vs) > 1:
			return &params{err: errs.New(errs.Malformed, "query parameter %q: give it once", name)}
		case len(vs[0]) > maxParam:
			return &params{err: errs.New(errs.Malformed, "query parameter %q: longer than %d bytes", name, maxParam)}
		}
	}
	return &params{v: v}
}

// limitText shortens what a client sent before it goes into an error.
func limitText(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func (p *params) get(name string) string { return p.v.Get(name) }

// fail records the first error about parameter name.
func (p *params) fail(name, format string, args ...any) {
	if p.err == nil {
		p.err = errs.New(errs.Malformed, "query parameter %q: "+format, append([]any{name}, args...)...)
	}
}

// limit is the page size: limit=, default 50, at most 500.
func (p *params) limit() int {
	s := p.get("limit")
	if s == "" {
		return defaultLimit
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxLimit {
		p.fail("limit", "give a whole number from 1 to %d", maxLimit)
	}
	return n
}

// bool reads true or false; absent is false.
func (p *params) bool(name string) bool {
	switch p.get(name) {
	case "", "false":
		return false
	case "true":
		return true
	}
	p.fail(name, "give true or false")
	return false
}

// time reads an RFC 3339 time; absent is the zero time.
func (p *params) time(name string) time.Time {
	s := p.get(name)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		p.fail(name, "give an RFC 3339 time such as 2026-01-02T15:04:05Z")
	}
	return t
}

// cursor reads the opaque cursor of a previous page's "next"; absent is "".
func (p *params) cursor() string {
	s := p.get("cursor")
	if s == "" {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		p.fail("cursor", "give the \"next\" value of the previous page unchanged")
	}
	return string(b)
}

func encodeCursor(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// certificateFilter turns the query of GET /api/v1/certificates into a
// store.Filter at time now.
func certificateFilter(p *params, now time.Time) store.Filter {
	f := store.Filter{Authority: p.get("authority"), NameContains: p.get("name"), WithInternal: p.bool("internal"), Limit: p.limit()}
	if s := p.get("serial"); s != "" {
		if f.Serial = strings.ToLower(s); !store.IsSerial(f.Serial) {
			p.fail("serial", "give a serial number in hexadecimal")
		}
	}
	var expiring time.Duration
	if s := p.get("expiring"); s != "" {
		d, err := config.ParseDuration(s)
		if err != nil || d <= 0 {
			p.fail("expiring", "give a positive duration such as 7d or 72h")
		}
		expiring = d
	}
	if !f.Narrow(p.get("status"), expiring, now) {
		p.fail("status", "give valid, revoked or expired")
	}
	if c := p.cursor(); c != "" {
		if !store.IsSerial(c) {
			p.fail("cursor", "give the \"next\" value of the previous page unchanged")
		}
		f.AfterSerial = c
	}
	return f
}

// certificateOut is a certificate in the read API: the operator's view
// (ca.CertificateView, which the CLI prints too) and, for one
// certificate, its audit events.
type certificateOut struct {
	ca.CertificateView
	Events []eventOut `json:"events,omitempty"`
}

// endpointOut is one endpoint signet check --record recorded.
type endpointOut struct {
	ca.Deployment
	Serial   string     `json:"serial,omitempty"` // the certificate served; none if the check got no certificate
	NotAfter *time.Time `json:"not_after,omitempty"`
}

// endpoints: GET /api/v1/endpoints?serial=, every endpoint signet check
// --record recorded (or those serving one certificate), with its latest
// verdict. Not paged: the operator records them one by one.
func (s *Server) endpoints(w http.ResponseWriter, r *http.Request, _ string) {
	p := readParams(r, "serial")
	serial := strings.ToLower(p.get("serial"))
	if p.err == nil && serial != "" && !store.IsSerial(serial) {
		p.fail("serial", "give a serial number in hexadecimal")
	}
	if p.err != nil {
		writeProblem(w, r, s.o.Log, p.err)
		return
	}
	list, err := s.o.Store.EndpointChecks(r.Context(), serial)
	if err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	out := []endpointOut{}
	for _, e := range list {
		o := endpointOut{Deployment: ca.DeploymentOf(e), Serial: e.Serial}
		if !e.NotAfter.IsZero() {
			na := e.NotAfter.UTC()
			o.NotAfter = &na
		}
		out = append(out, o)
	}
	writeJSON(w, http.StatusOK, out)
}

// eventOut is an audit event in the read API: what happened, not the
// hashes that chain it (signet audit verify checks those).
type eventOut struct {
	Seq       int64           `json:"seq"`
	Time      time.Time       `json:"time"`
	Kind      string          `json:"kind"`
	Actor     string          `json:"actor"`
	Authority string          `json:"authority,omitempty"`
	Subject   string          `json:"subject,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
}

func toEventsOut(list []audit.Event) []eventOut {
	out := make([]eventOut, len(list))
	for i, e := range list {
		out[i] = eventOut{Seq: e.Seq, Time: e.Time.UTC(), Kind: e.Kind, Actor: e.Actor, Authority: e.Authority, Subject: e.Subject, Data: e.Data}
	}
	return out
}

// page is one page of a listing: next, when set, is the cursor of the next.
type page[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

// certificates: GET /api/v1/certificates, in (not_after, serial) order.
func (s *Server) certificates(w http.ResponseWriter, r *http.Request, _ string) {
	now := time.Now()
	p := readParams(r, "authority", "status", "name", "serial", "expiring", "internal", "cursor", "limit")
	var f store.Filter
	if p.err == nil {
		f = certificateFilter(p, now)
	}
	if p.err != nil {
		writeProblem(w, r, s.o.Log, p.err)
		return
	}
	limit := f.Limit
	f.Limit++ // one more says whether there is a next page
	list, err := s.o.Store.Certificates(r.Context(), f)
	if errs.KindOf(err) == errs.NotFound && f.AfterSerial != "" {
		err = errs.New(errs.Malformed, "query parameter \"cursor\": it names no certificate; give the \"next\" value of the previous page unchanged")
	}
	if err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	out := page[certificateOut]{Items: []certificateOut{}}
	if len(list) > limit {
		list = list[:limit]
		out.Next = encodeCursor(list[limit-1].Serial)
	}
	for _, c := range list {
		out.Items = append(out.Items, certificateOut{CertificateView: ca.View(c, now)})
	}
	writeJSON(w, http.StatusOK, out)
}

// certificate: GET /api/v1/certificates/{serial}, with its chain, its
// revocation and the audit events whose subject it is (at most maxLimit,
// oldest first); or the PEM certificate alone when asked for
// application/pem-certificate-chain.
func (s *Server) certificate(w http.ResponseWriter, r *http.Request, _ string) {
	serial := strings.ToLower(r.PathValue("serial"))
	if !store.IsSerial(serial) {
		writeProblem(w, r, s.o.Log, errs.New(errs.Malformed, "serial %q: give a serial number in hexadecimal", limitText(serial)))
		return
	}
	c, err := s.o.Store.Certificate(r.Context(), serial)
	if err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	if strings.Contains(r.Header.Get("Accept"), "application/pem-certificate-chain") {
		w.Header().Set("Content-Type", "application/pem-certificate-chain")
		pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: c.DER})
		return
	}
	out := certificateOut{CertificateView: ca.View(c, time.Now())}
	out.WithPEM(c.DER)
	chain, err := s.o.CA.Chain(r.Context(), c.Authority)
	if err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	for _, der := range chain {
		out.Chain = append(out.Chain, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	}
	events, err := s.o.Store.AuditEvents(r.Context(), store.EventFilter{Subject: c.Serial, Limit: maxLimit})
	if err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	out.Events = toEventsOut(events)
	deployed, err := s.o.Store.EndpointChecks(r.Context(), c.Serial)
	if err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	out.Deployed = ca.Deployments(deployed)
	writeJSON(w, http.StatusOK, out)
}

// auditVerification: GET /api/v1/audit/verification, the latest
// background verification ("pending" before the first has finished).
func (s *Server) auditVerification(w http.ResponseWriter, r *http.Request, _ string) {
	if s.o.Audit == nil {
		writeProblem(w, r, s.o.Log, errs.New(errs.NotFound, "this server does not verify the audit log in the background (signet serve --audit-verify-every 0); run signet audit verify"))
		return
	}
	v, ok := s.o.Audit.Latest()
	if !ok {
		writeJSON(w, http.StatusOK, map[string]string{"state": "pending"})
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// auditEvents: GET /api/v1/audit/events, in seq order.
func (s *Server) auditEvents(w http.ResponseWriter, r *http.Request, _ string) {
	p := readParams(r, "kind", "actor", "since", "until", "cursor", "limit")
	var f store.EventFilter
	if p.err == nil {
		f = store.EventFilter{Kind: p.get("kind"), Actor: p.get("actor"), Since: p.time("since"), Until: p.time("until"), Limit: p.limit()}
		if c := p.cursor(); c != "" {
			seq, err := strconv.ParseInt(c, 10, 64)
			if err != nil || seq < 1 {
				p.fail("cursor", "give the \"next\" value of the previous page unchanged")
			}
			f.AfterSeq = seq
		}
	}
	if p.err != nil {
		writeProblem(w, r, s.o.Log, p.err)
		return
	}
	limit := f.Limit
	f.Limit++
	list, err := s.o.Store.AuditEvents(r.Context(), f)
	if err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	out := page[eventOut]{}
	if len(list) > limit {
		list = list[:limit]
		out.Next = encodeCursor(strconv.FormatInt(list[limit-1].Seq, 10))
	}
	out.Items = toEventsOut(list)
	writeJSON(w, http.StatusOK, out)
}

// sshCertificateOut is an SSH certificate in the read API.
type sshCertificateOut struct {
	Serial        uint64            `json:"serial"`
	Authority     string            `json:"authority"`
	CAFingerprint string            `json:"ca_fingerprint"`
	KeyID         string            `json:"key_id"`
	Type          store.SSHCertType `json:"type"`
	Principals    []string          `json:"principals"`
	ValidAfter    time.Time         `json:"valid_after"`
	ValidBefore   time.Time         `json:"valid_before"`
	Status        store.Status      `json:"status"`
	RevokedAt     *time.Time        `json:"revoked_at,omitempty"`
	RevokedBy     string            `json:"revoked_by,omitempty"` // serial or key-id
}

// sshCertificates: GET /api/v1/ssh/certificates, in serial order.
func (s *Server) sshCertificates(w http.ResponseWriter, r *http.Request, _ string) {
	p := readParams(r, "authority", "status", "principal", "key_id", "cursor", "limit")
	var f store.SSHFilter
	if p.err == nil {
		f = store.SSHFilter{Authority: p.get("authority"), Principal: p.get("principal"), KeyID: p.get("key_id"), Limit: p.limit()}
		switch st := store.Status(p.get("status")); st {
		case "", store.Valid, store.Revoked:
			f.Status = st
		default:
			p.fail("status", "give valid or revoked")
		}
		if c := p.cursor(); c != "" {
			serial, err := strconv.ParseUint(c, 10, 63)
			if err != nil || serial < 1 {
				p.fail("cursor", "give the \"next\" value of the previous page unchanged")
			}
			f.AfterSerial = serial
		}
	}
	if p.err != nil {
		writeProblem(w, r, s.o.Log, p.err)
		return
	}
	limit := f.Limit
	f.Limit++
	list, err := s.o.Store.SSHCertificates(r.Context(), f)
	if err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	out := page[sshCertificateOut]{Items: []sshCertificateOut{}}
	if len(list) > limit {
		list = list[:limit]
		out.Next = encodeCursor(strconv.FormatUint(list[limit-1].Serial, 10))
	}
	for _, c := range list {
		o := sshCertificateOut{
			Serial: c.Serial, Authority: c.Authority, CAFingerprint: c.CAFingerprint, KeyID: c.KeyID, Type: c.Type,
			Principals: c.Principals, ValidAfter: c.ValidAfter.UTC(), ValidBefore: c.ValidBefore.UTC(), Status: c.Status,
		}
		if c.Status == store.Revoked {
			at := c.RevokedAt.UTC()
			o.RevokedAt, o.RevokedBy = &at, c.RevokedBy
		}
		out.Items = append(out.Items, o)
	}
	writeJSON(w, http.StatusOK, out)
}

// sshKeyOut is an SSH CA key in the read API: where it stands in its
// authority's rollover, and where its private key is (redacted).
type sshKeyOut struct {
	Authority   string            `json:"authority"`
	Fingerprint string            `json:"fingerprint"`
	PublicKey   string            `json:"public_key"`
	State       store.SSHKeyState `json:"state"`
	Key         string            `json:"key"`
	Created     time.Time         `json:"created"`
}

// sshKeys: GET /api/v1/ssh/keys, the CA keys of every SSH authority (or of
// authority=), by authority, oldest first. Authorities have few keys: no pages.
func (s *Server) sshKeys(w http.ResponseWriter, r *http.Request, _ string) {
	p := readParams(r, "authority")
	if p.err != nil {
		writeProblem(w, r, s.o.Log, p.err)
		return
	}
	list, err := s.o.Store.Authorities(r.Context())
	if err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	out := []sshKeyOut{}
	for _, a := range list {
		if !profile.Purpose(a.Purpose).IsSSH() || p.get("authority") != "" && a.Name != p.get("authority") {
			continue
		}
		keys, err := s.o.Store.SSHKeys(r.Context(), a.Name)
		if err != nil {
			writeProblem(w, r, s.o.Log, err)
			return
		}
		for _, k := range keys {
			out = append(out, sshKeyOut{Authority: k.Authority, Fingerprint: k.Fingerprint, PublicKey: k.PublicKey,
				State: k.State, Key: kms.Redact(k.KeyURI), Created: k.CreatedAt.UTC()})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// acmeAccountOut is an ACME account in the read API. Contacts are what the
// client wrote: data to display as text, never to follow.
type acmeAccountOut struct {
	ID        string    `json:"id"`
	Authority string    `json:"authority"`
	KeyID     string    `json:"key_thumbprint"`
	Contacts  []string  `json:"contacts"`
	Status    string    `json:"status"`
	EABKeyID  string    `json:"eab_key_id,omitempty"`
	Created   time.Time `json:"created"`
}

// acmeAccounts: GET /api/v1/acme/accounts, by ID.
func (s *Server) acmeAccounts(w http.ResponseWriter, r *http.Request, _ string) {
	p := readParams(r, "authority", "status", "cursor", "limit")
	var f store.ACMEAccountFilter
	if p.err == nil {
		f = store.ACMEAccountFilter{Authority: p.get("authority"), Status: p.get("status"), AfterID: p.cursor(), Limit: p.limit()}
		switch f.Status {
		case "", store.StatusValid, store.StatusDeactivated, store.StatusRevoked:
		default:
			p.fail("status", "give valid, deactivated or revoked")
		}
	}
	if p.err != nil {
		writeProblem(w, r, s.o.Log, p.err)
		return
	}
	limit := f.Limit
	f.Limit++
	list, err := s.o.Store.ACMEAccounts(r.Context(), f)
	if err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	out := page[acmeAccountOut]{Items: []acmeAccountOut{}}
	if len(list) > limit {
		list = list[:limit]
		out.Next = encodeCursor(list[limit-1].ID)
	}
	for _, a := range list {
		out.Items = append(out.Items, acmeAccountOut{ID: a.ID, Authority: a.Authority, KeyID: a.KeyID, Contacts: a.Contacts,
			Status: a.Status, EABKeyID: a.EABKeyID, Created: a.CreatedAt.UTC()})
	}
	writeJSON(w, http.StatusOK, out)
}

// acmeAuthzOut is an order's authorization without its challenges' tokens.
type acmeAuthzOut struct {
	Identifier store.ACMEIdentifier `json:"identifier"`
	Wildcard   bool                 `json:"wildcard,omitempty"`
	Status     string               `json:"status"`
}

// acmeOrderOut is an ACME order in the read API.
type acmeOrderOut struct {
	ID          string                 `json:"id"`
	Authority   string                 `json:"authority"`
	AccountID   string                 `json:"account_id"`
	Status      string                 `json:"status"`
	Expires     time.Time              `json:"expires"`
	Identifiers []store.ACMEIdentifier `json:"identifiers"`
	Authzs      []acmeAuthzOut         `json:"authorizations"`
	Profile     string                 `json:"profile,omitempty"`
	Replaces    string                 `json:"replaces,omitempty"`
	CertSerial  string                 `json:"certificate_serial,omitempty"`
	ErrorType   string                 `json:"error_type,omitempty"`
	ErrorDetail string                 `json:"error_detail,omitempty"`
	Created     time.Time              `json:"created"`
}

// acmeOrders: GET /api/v1/acme/accounts/{id}/orders, by ID; 404 if there
// is no such account.
func (s *Server) acmeOrders(w http.ResponseWriter, r *http.Request, _ string) {
	p := readParams(r, "cursor", "limit")
	var f store.ACMEOrderFilter
	if p.err == nil {
		f = store.ACMEOrderFilter{AccountID: r.PathValue("id"), AfterID: p.cursor(), Limit: p.limit()}
		if len(f.AccountID) > maxParam {
			p.err = errs.New(errs.Malformed, "account ID: longer than %d bytes", maxParam)
		}
	}
	if p.err != nil {
		writeProblem(w, r, s.o.Log, p.err)
		return
	}
	if _, err := s.o.Store.ACMEAccount(r.Context(), f.AccountID); err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	limit := f.Limit
	f.Limit++
	list, err := s.o.Store.ACMEOrders(r.Context(), f)
	if err != nil {
		writeProblem(w, r, s.o.Log, err)
		return
	}
	out := page[acmeOrderOut]{Items: []acmeOrderOut{}}
	if len(list) > limit {
		list = list[:limit]
		out.Next = encodeCursor(list[limit-1].ID)
	}
	for _, o := range list {
		authzs := make([]acmeAuthzOut, len(o.Authzs))
		for i, az := range o.Authzs {
			authzs[i] = acmeAuthzOut{Identifier: az.Identifier, Wildcard: az.Wildcard, Status: az.Status}
		}
		out.Items = append(out.Items, acmeOrderOut{ID: o.ID, Authority: o.Authority, AccountID: o.AccountID, Status: o.Status,
			Expires: o.Expires.UTC(), Identifiers: o.Identifiers, Authzs: authzs, Profile: o.Profile, Replaces: o.Replaces,
			CertSerial: o.CertSerial, ErrorType: o.ErrorType, ErrorDetail: o.ErrorDetail, Created: o.CreatedAt.UTC()})
	}
	writeJSON(w, http.StatusOK, out)
}
