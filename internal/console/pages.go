package console

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"signet/internal/acme/eab"
	"signet/internal/audit"
	"signet/internal/ca"
	"signet/internal/config"
	"signet/internal/errs"
	"signet/internal/profile"
	"signet/internal/store"
)

// pageSize is how many rows a listing shows at once.
const pageSize = 50

// dashboardData is the dashboard: authorities, what expires soon, the two
// charts and the latest events.
type dashboardData struct {
	Authorities    []ca.AuthorityStatus
	Expiring7      []store.Certificate
	Expiring30     []store.Certificate
	Issued, Expiry chart
	Events         []audit.Event
}

// dashboard: GET /ui/.
func (c *Console) dashboard(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, now := r.Context(), c.o.Now()
	var d dashboardData
	var err error
	if d.Authorities, err = c.o.CA.Status(ctx, c.o.Store); err != nil {
		c.fail(w, r, s, err)
		return
	}
	f := store.Filter{Limit: 500}
	f.Narrow("valid", 30*24*time.Hour, now)
	soon, err := c.o.Store.Certificates(ctx, f)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	for _, cert := range soon {
		if cert.NotAfter.Sub(now) <= 7*24*time.Hour {
			d.Expiring7 = append(d.Expiring7, cert)
		} else {
			d.Expiring30 = append(d.Expiring30, cert)
		}
	}
	if d.Issued, err = c.issuedChart(r, now); err != nil {
		c.fail(w, r, s, err)
		return
	}
	if d.Expiry, err = c.expiryChart(r, now); err != nil {
		c.fail(w, r, s, err)
		return
	}
	if d.Events, err = c.latestEvents(r, 10); err != nil {
		c.fail(w, r, s, err)
		return
	}
	slices.Reverse(d.Events)
	c.render(w, http.StatusOK, "dashboard", c.page(s, "Dashboard", "dashboard", d))
}

func (c *Console) page(s *session, title, nav string, data any) page {
	return page{Title: title, Nav: nav, Operator: s.Operator, CSRF: s.csrf, Now: c.o.Now(), Data: data}
}

// latestEvents are the newest n events, oldest first.
func (c *Console) latestEvents(r *http.Request, n int64) ([]audit.Event, error) {
	head, _, _, err := c.o.Store.AuditHead(r.Context(), 0)
	if err != nil {
		return nil, err
	}
	return c.o.Store.AuditEvents(r.Context(), store.EventFilter{AfterSeq: max(0, head-n), Limit: int(n)})
}

// certificatesData is a page of the certificate search.
type certificatesData struct {
	Query, Authority, Status, Expiring string
	Internal                           bool
	Authorities                        []string
	Items                              []store.Certificate
	Next                               string // the cursor of the next page
	NextQuery                          string
}

// certificates: GET /ui/certificates, the read API's search: name or
// subject contains q, authority, status, expiring within, internal too.
func (c *Console) certificates(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := certificatesData{Query: strings.TrimSpace(q.Get("q")), Authority: q.Get("authority"), Status: q.Get("status"),
		Expiring: q.Get("expiring"), Internal: q.Get("internal") == "true"}
	f := store.Filter{Authority: d.Authority, NameContains: d.Query, WithInternal: d.Internal, Limit: pageSize + 1}
	if store.IsSerial(strings.ToLower(d.Query)) {
		if cert, err := c.o.Store.Certificate(r.Context(), strings.ToLower(d.Query)); err == nil {
			http.Redirect(w, r, "/ui/certificates/"+cert.Serial, http.StatusSeeOther)
			return
		}
	}
	var expiring time.Duration
	if d.Expiring != "" {
		var err error
		if expiring, err = config.ParseDuration(d.Expiring); err != nil || expiring <= 0 {
			c.fail(w, r, s, errs.New(errs.Malformed, "expiring within %q: give a duration such as 7d or 30d", d.Expiring))
			return
		}
	}
	if !f.Narrow(d.Status, expiring, c.o.Now()) {
		c.fail(w, r, s, errs.New(errs.Malformed, "status %q: choose valid, revoked or expired", d.Status))
		return
	}
	if after := q.Get("after"); after != "" {
		if !store.IsSerial(after) {
			c.fail(w, r, s, errs.New(errs.Malformed, "the next-page link was altered: go back to the first page"))
			return
		}
		f.AfterSerial = after
	}
	list, err := c.o.Store.Certificates(r.Context(), f)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	if len(list) > pageSize {
		list = list[:pageSize]
		next := q
		next.Set("after", list[pageSize-1].Serial)
		d.NextQuery = next.Encode()
	}
	d.Items = list
	if d.Authorities, err = c.authorityNames(r, false); err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.render(w, http.StatusOK, "certificates", c.page(s, "Certificates", "certificates", d))
}

// authorityNames are the X.509 authorities' names; with issuing, only
// those that issue leaves (not the root).
func (c *Console) authorityNames(r *http.Request, issuing bool) ([]string, error) {
	list, err := c.o.Store.Authorities(r.Context())
	if err != nil {
		return nil, err
	}
	var out []string
	for _, a := range list {
		if profile.Purpose(a.Purpose).IsSSH() || issuing && (a.Parent == "" || a.Disabled) {
			continue
		}
		out = append(out, a.Name)
	}
	return out, nil
}

// certificateData is a certificate's page.
type certificateData struct {
	Cert     store.Certificate
	Parsed   *x509.Certificate
	Key      string
	Reason   string
	Expired  bool
	Events   []audit.Event
	Deployed []store.EndpointCheck // where signet check --record last found it served
	Issued   bool                  // just issued here: offer the download
	CanWrite bool
}

// certificate: GET /ui/certificates/{serial}.
func (c *Console) certificate(w http.ResponseWriter, r *http.Request, s *session) {
	cert, ok := c.lookup(w, r, s)
	if !ok {
		return
	}
	d := certificateData{Cert: cert, Expired: !c.o.Now().Before(cert.NotAfter), Issued: r.URL.Query().Get("issued") == "1",
		CanWrite: s.Can(store.RoleOperator)}
	if cert.Status == store.Revoked {
		d.Reason = ca.ReasonName(cert.RevocationReason)
	}
	if p, err := x509.ParseCertificate(cert.DER); err == nil {
		d.Parsed, d.Key = p, keyText(p)
	}
	var err error
	if d.Events, err = c.o.Store.AuditEvents(r.Context(), store.EventFilter{Subject: cert.Serial, Limit: 500}); err != nil {
		c.fail(w, r, s, err)
		return
	}
	if d.Deployed, err = c.o.Store.EndpointChecks(r.Context(), cert.Serial); err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.render(w, http.StatusOK, "certificate", c.page(s, "Certificate "+cert.Serial, "certificates", d))
}

// keyText names a certificate's public key algorithm and size.
func keyText(p *x509.Certificate) string {
	switch k := p.PublicKey.(type) {
	case interface{ Size() int }:
		return p.PublicKeyAlgorithm.String() + " " + strconv.Itoa(k.Size()*8) + " bits"
	}
	return p.PublicKeyAlgorithm.String()
}

// lookup reads the certificate the path names.
func (c *Console) lookup(w http.ResponseWriter, r *http.Request, s *session) (store.Certificate, bool) {
	serial := strings.ToLower(r.PathValue("serial"))
	if !store.IsSerial(serial) {
		c.fail(w, r, s, errs.New(errs.Malformed, "%q is not a serial number: give it in hexadecimal", limitText(serial)))
		return store.Certificate{}, false
	}
	cert, err := c.o.Store.Certificate(r.Context(), serial)
	if err != nil {
		c.fail(w, r, s, err)
		return cert, false
	}
	return cert, true
}

func limitText(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// chain: GET /ui/certificates/{serial}/chain.pem, the certificate and its
// chain up to (not including) the root, as a download.
func (c *Console) chain(w http.ResponseWriter, r *http.Request, s *session) {
	cert, ok := c.lookup(w, r, s)
	if !ok {
		return
	}
	chain, err := c.o.CA.Chain(r.Context(), cert.Authority)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	var out bytes.Buffer
	for _, der := range append([][]byte{cert.DER}, chain...) {
		pem.Encode(&out, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	w.Header().Set("Content-Type", "application/pem-certificate-chain")
	w.Header().Set("Content-Disposition", `attachment; filename="`+cert.Serial+`-chain.pem"`)
	w.Write(out.Bytes())
}

// reasons are the revocation reasons the console offers, most common first.
var reasons = []string{"unspecified", "keyCompromise", "superseded", "cessationOfOperation", "affiliationChanged", "privilegeWithdrawn"}

// revokeForm: GET /ui/certificates/{serial}/revoke, the confirmation step.
func (c *Console) revokeForm(w http.ResponseWriter, r *http.Request, s *session) {
	cert, ok := c.lookup(w, r, s)
	if !ok {
		return
	}
	if cert.Status == store.Revoked {
		c.fail(w, r, s, errs.New(errs.Conflict, "certificate %s is revoked already", cert.Serial))
		return
	}
	c.render(w, http.StatusOK, "revoke", c.page(s, "Revoke certificate "+cert.Serial, "certificates",
		map[string]any{"Cert": cert, "Reasons": reasons}))
}

// revoke: POST /ui/certificates/{serial}/revoke with a reason and the
// confirmation, through ca.Revoke like the API and the CLI.
func (c *Console) revoke(w http.ResponseWriter, r *http.Request, s *session) {
	cert, ok := c.lookup(w, r, s)
	if !ok {
		return
	}
	if r.PostFormValue("confirm") != cert.Serial {
		c.fail(w, r, s, errs.New(errs.Malformed, "to revoke, type the serial %s into the confirmation field", cert.Serial))
		return
	}
	code, err := ca.ParseReason(r.PostFormValue("reason"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	if _, err := c.o.CA.Revoke(r.Context(), cert.Serial, code, s.Actor()); err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.o.Log.Info("revoked", "serial", cert.Serial, "reason", ca.ReasonName(code), "actor", s.Actor())
	http.Redirect(w, r, "/ui/certificates/"+cert.Serial, http.StatusSeeOther)
}

// issueForm: GET /ui/issue.
func (c *Console) issueForm(w http.ResponseWriter, r *http.Request, s *session) {
	names, err := c.authorityNames(r, true)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.render(w, http.StatusOK, "issue", c.page(s, "Issue a certificate", "issue", map[string]any{"Authorities": names}))
}

// issue: POST /ui/issue, a pasted or uploaded CSR through ca.Issue; names
// given replace the CSR's. The console never makes a private key.
func (c *Console) issue(w http.ResponseWriter, r *http.Request, s *session) {
	csrData := []byte(r.PostFormValue("csr"))
	if f, _, err := r.FormFile("csrfile"); err == nil {
		csrData, err = io.ReadAll(io.LimitReader(f, ca.MaxCSRSize+1))
		f.Close()
		if err != nil {
			c.fail(w, r, s, errs.Wrap(errs.Malformed, err, "reading the uploaded CSR"))
			return
		}
	}
	if len(bytes.TrimSpace(csrData)) == 0 {
		c.fail(w, r, s, errs.New(errs.Malformed, "no CSR: paste one (PEM) or choose a CSR file"))
		return
	}
	csr, err := ca.ParseCSR(csrData)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	req := ca.Request{Authority: r.PostFormValue("authority"), CSR: csr, Actor: s.Actor()}
	for _, n := range strings.FieldsFunc(r.PostFormValue("names"), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' }) {
		if ip := net.ParseIP(n); ip != nil {
			req.IPAddresses = append(req.IPAddresses, ip)
		} else if strings.Contains(n, "@") {
			req.EmailAddresses = append(req.EmailAddresses, n)
		} else {
			req.DNSNames = append(req.DNSNames, n)
		}
	}
	if v := strings.TrimSpace(r.PostFormValue("validity")); v != "" {
		if req.Validity, err = config.ParseDuration(v); err != nil {
			c.fail(w, r, s, err)
			return
		}
	}
	if err := c.o.Limits.Certificate(req.Authority); err != nil {
		c.fail(w, r, s, err)
		return
	}
	iss, err := c.o.CA.Issue(r.Context(), req)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.o.Log.Info("issued", "serial", iss.Serial, "authority", req.Authority, "not_after", iss.NotAfter, "actor", s.Actor())
	http.Redirect(w, r, "/ui/certificates/"+iss.Serial+"?issued=1", http.StatusSeeOther)
}

// unlock: POST /ui/unlock gives an authority's PIN or passphrase, as
// signet unlock does; it is tried once.
func (c *Console) unlock(w http.ResponseWriter, r *http.Request, s *session) {
	secret := []byte(r.PostFormValue("secret"))
	defer clear(secret)
	authority := r.PostFormValue("authority")
	if len(secret) == 0 {
		c.fail(w, r, s, errs.New(errs.Malformed, "give the PIN or passphrase of authority %q to unlock it", authority))
		return
	}
	err := c.o.CA.Unlock(r.Context(), ca.Target{Authority: authority}, secret, false, s.Actor())
	if err != nil {
		c.o.Log.Warn("unlock refused", "authority", authority, "actor", s.Actor(), "err", err)
		c.fail(w, r, s, err)
		return
	}
	c.o.Log.Info("unlocked", "authority", authority, "actor", s.Actor())
	c.o.Changed(r.Context())
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

// auditData is a page of the audit log.
type auditData struct {
	Verification *audit.Verification // the latest background verification, nil before the first
	Verifying    bool                // a background verification runs
	Kind, Actor  string
	Items        []audit.Event
	Earlier      string // query of the page before, "" on the first
	Later        string // query of the page after, "" on the last
}

// audit: GET /ui/audit, the newest events, or those of a kind or actor
// from the start; ?from=SEQ pages.
func (c *Console) audit(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := auditData{Kind: strings.TrimSpace(q.Get("kind")), Actor: strings.TrimSpace(q.Get("actor"))}
	f := store.EventFilter{Kind: d.Kind, Actor: d.Actor, Limit: pageSize + 1}
	head, _, _, err := c.o.Store.AuditHead(r.Context(), 0)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	filtered := d.Kind != "" || d.Actor != ""
	switch from := q.Get("from"); {
	case from != "":
		if f.AfterSeq, err = strconv.ParseInt(from, 10, 64); err != nil || f.AfterSeq < 0 {
			c.fail(w, r, s, errs.New(errs.Malformed, "from %q: give an event number", limitText(from)))
			return
		}
	case !filtered:
		f.AfterSeq = max(0, head-pageSize)
	}
	list, err := c.o.Store.AuditEvents(r.Context(), f)
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	if len(list) > pageSize {
		list = list[:pageSize]
		next := q
		next.Set("from", strconv.FormatInt(list[pageSize-1].Seq, 10))
		d.Later = next.Encode()
	}
	if !filtered && f.AfterSeq > 0 {
		prev := q
		prev.Set("from", strconv.FormatInt(max(0, f.AfterSeq-pageSize), 10))
		d.Earlier = prev.Encode()
	}
	d.Items = list
	if c.o.Audit != nil {
		d.Verifying = true
		if v, ok := c.o.Audit.Latest(); ok {
			d.Verification = &v
		}
	}
	c.render(w, http.StatusOK, "audit", c.page(s, "Audit log", "audit", d))
}

// sshData is the SSH page: each SSH authority's CA keys, and certificates.
type sshData struct {
	Authorities []string // SSH authorities, for their trust lines and KRL
	Keys        []store.SSHKey
	Certs       []store.SSHCertificate
	More        bool
}

// ssh: GET /ui/ssh.
func (c *Console) ssh(w http.ResponseWriter, r *http.Request, s *session) {
	var d sshData
	list, err := c.o.Store.Authorities(r.Context())
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	for _, a := range list {
		if !profile.Purpose(a.Purpose).IsSSH() {
			continue
		}
		d.Authorities = append(d.Authorities, a.Name)
		keys, err := c.o.Store.SSHKeys(r.Context(), a.Name)
		if err != nil {
			c.fail(w, r, s, err)
			return
		}
		d.Keys = append(d.Keys, keys...)
	}
	q := r.URL.Query()
	f := store.SSHFilter{Principal: strings.TrimSpace(q.Get("principal")), KeyID: strings.TrimSpace(q.Get("key_id")), Limit: pageSize + 1}
	if d.Certs, err = c.o.Store.SSHCertificates(r.Context(), f); err != nil {
		c.fail(w, r, s, err)
		return
	}
	if len(d.Certs) > pageSize {
		d.Certs, d.More = d.Certs[:pageSize], true
	}
	c.render(w, http.StatusOK, "ssh", c.page(s, "SSH", "ssh", map[string]any{"D": d, "Principal": f.Principal, "KeyID": f.KeyID}))
}

// acmeAccounts: GET /ui/acme, the ACME accounts; ?after=ID pages.
func (c *Console) acmeAccounts(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	list, err := c.o.Store.ACMEAccounts(r.Context(), store.ACMEAccountFilter{AfterID: q.Get("after"), Limit: pageSize + 1})
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	next := ""
	if len(list) > pageSize {
		list = list[:pageSize]
		next = list[pageSize-1].ID
	}
	var acme []string
	if c.o.EAB != nil && s.Can(store.RoleAdmin) {
		all, err := c.o.Store.Authorities(r.Context())
		if err != nil {
			c.fail(w, r, s, err)
			return
		}
		for _, a := range all {
			if a.ACME {
				acme = append(acme, a.Name)
			}
		}
	}
	c.render(w, http.StatusOK, "acme", c.page(s, "ACME accounts", "acme", map[string]any{"Accounts": list, "After": next, "EABAuthorities": acme}))
}

// createEAB: POST /ui/acme/eab makes an external account binding key for
// an authority (eab.Create, as signet acme eab-key) and shows its HMAC key
// this once.
func (c *Console) createEAB(w http.ResponseWriter, r *http.Request, s *session) {
	if c.o.EAB == nil {
		c.fail(w, r, s, errs.New(errs.Unavailable, "this server cannot seal EAB keys; create them with signet acme eab-key"))
		return
	}
	authority := r.PostFormValue("authority")
	kid, key, err := eab.Create(r.Context(), c.o.Store, c.o.EAB, authority, s.Actor())
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.o.Log.Info("EAB key created", "authority", authority, "kid", kid, "actor", s.Actor())
	c.render(w, http.StatusOK, "eab", c.page(s, "New EAB key", "acme", map[string]any{"Authority": authority, "KID": kid, "Key": key}))
}

// acmeAccount: GET /ui/acme/accounts/{id}, an account and its orders.
func (c *Console) acmeAccount(w http.ResponseWriter, r *http.Request, s *session) {
	a, err := c.o.Store.ACMEAccount(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	orders, err := c.o.Store.ACMEOrders(r.Context(), store.ACMEOrderFilter{AccountID: a.ID, Limit: 500})
	if err != nil {
		c.fail(w, r, s, err)
		return
	}
	c.render(w, http.StatusOK, "account", c.page(s, "ACME account", "acme", map[string]any{"Account": a, "Orders": orders}))
}
