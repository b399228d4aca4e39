// Package console is signet's web console at /ui/: server-rendered pages
// (html/template, embedded, no script) over the same store queries and CA
// operations as the API. People sign in with a token or a client
// certificate; the session lives in the store so that every node knows it,
// and every form carries a CSRF token.
package console

import (
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"signet/internal/acme/eab"
	"signet/internal/audit"
	"signet/internal/ca"
	"signet/internal/errs"
	"signet/internal/limits"
	"signet/internal/store"
)

// Operator is who signed in: an ID that names them unambiguously (the
// API's actor, such as "operator:otto"), a name for the audit log and a
// role (store.RoleViewer, store.RoleOperator or store.RoleAdmin).
type Operator struct {
	ID   string
	Name string
	Role string
	// Certificate is the serial of the admin authority's client
	// certificate they signed in with; "" for a token. The session lasts
	// only as long as that certificate stays valid.
	Certificate string
}

// Can says whether the operator's role allows what needs role need.
func (o Operator) Can(need string) bool { return store.RoleAllows(o.Role, need) }

// Actor is how the audit log names what the operator did in the console.
func (o Operator) Actor() string { return "ui:" + o.Name }

// Authenticate maps what a person presents at sign-in to an operator: a
// token, or, when token is "", the request's client certificate.
type Authenticate func(r *http.Request, token string) (Operator, error)

// Recheck says who the operator with ID is now, on every request of a
// session: a removed operator, or one whose client certificate (serial
// certificate, "" for a token) was revoked or expired, is errs.NotFound and
// signed out; a changed role applies at once.
type Recheck func(ctx context.Context, id, certificate string) (Operator, error)

// Store is what the console reads and writes of the store: the read API's
// queries and the sessions.
type Store interface {
	ca.Lister
	ExpiringPerDay(ctx context.Context, now time.Time, days int) ([]int64, error)
	Certificate(ctx context.Context, serial string) (store.Certificate, error)
	Certificates(ctx context.Context, f store.Filter) ([]store.Certificate, error)
	AuditEvents(ctx context.Context, f store.EventFilter) ([]audit.Event, error)
	AuditHead(ctx context.Context, after int64) (seq int64, hash []byte, revoked bool, err error)
	AppendEvent(ctx context.Context, ev audit.Event) error
	SSHCertificates(ctx context.Context, f store.SSHFilter) ([]store.SSHCertificate, error)
	SSHKeys(ctx context.Context, authority string) ([]store.SSHKey, error)
	ACMEAccount(ctx context.Context, id string) (store.ACMEAccount, error)
	ACMEAccounts(ctx context.Context, f store.ACMEAccountFilter) ([]store.ACMEAccount, error)
	ACMEOrders(ctx context.Context, f store.ACMEOrderFilter) ([]store.ACMEOrder, error)
	EndpointChecks(ctx context.Context, serial string) ([]store.EndpointCheck, error)
	eab.KeyStore
	store.ConsoleSessions
	store.Operators
}

// Options configure the console.
type Options struct {
	CA           *ca.CA
	Store        Store
	Log          *slog.Logger
	Authenticate Authenticate
	Recheck      Recheck
	Limits       *limits.Limits // sign-in attempts; nil limits nothing
	EAB          *eab.Sealer    // seals new EAB keys; nil: the console creates none
	Audit        *audit.Watch   // the background verification of the audit log; nil: none runs
	// StatusOf is the HTTP status of an error (the server's one mapping).
	StatusOf func(error) int
	// Changed is called after an unlock, for the server to open the
	// authorities afresh.
	Changed func(context.Context)
	Now     func() time.Time // tests; nil: time.Now
}

// maxForm bounds every request body: a CSR upload is the largest.
const maxForm = 256 << 10

// Session lifetimes: idle since the last request, and since sign-in.
const (
	IdleTimeout     = 30 * time.Minute
	AbsoluteTimeout = 12 * time.Hour
)

// Console serves /ui/.
type Console struct {
	o     Options
	mux   *http.ServeMux
	pages map[string]*template.Template
	cop   *http.CrossOriginProtection
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// csp lets pages load only the console's own style sheet and images: no
// script at all, nothing inline, no framing, forms only to the console.
const csp = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// New builds the console's routes, all under /ui/.
func New(o Options) *Console {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Changed == nil {
		o.Changed = func(context.Context) {}
	}
	c := &Console{o: o, mux: http.NewServeMux(), pages: parsePages(), cop: http.NewCrossOriginProtection()}
	static, _ := fs.Sub(staticFS, "static")
	c.mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(static)))
	c.mux.HandleFunc("GET /ui/signin", c.signinForm)
	c.mux.HandleFunc("POST /ui/signin", c.signin)
	c.mux.Handle("POST /ui/signout", c.need(store.RoleViewer, c.signout))
	c.mux.Handle("GET /ui/{$}", c.need(store.RoleViewer, c.dashboard))
	c.mux.Handle("GET /ui/certificates", c.need(store.RoleViewer, c.certificates))
	c.mux.Handle("GET /ui/certificates/{serial}", c.need(store.RoleViewer, c.certificate))
	c.mux.Handle("GET /ui/certificates/{serial}/chain.pem", c.need(store.RoleViewer, c.chain))
	c.mux.Handle("GET /ui/certificates/{serial}/revoke", c.need(store.RoleOperator, c.revokeForm))
	c.mux.Handle("POST /ui/certificates/{serial}/revoke", c.need(store.RoleOperator, c.revoke))
	c.mux.Handle("GET /ui/issue", c.need(store.RoleOperator, c.issueForm))
	c.mux.Handle("POST /ui/issue", c.need(store.RoleOperator, c.issue))
	c.mux.Handle("POST /ui/unlock", c.need(store.RoleOperator, c.unlock))
	c.mux.Handle("GET /ui/audit", c.need(store.RoleViewer, c.audit))
	c.mux.Handle("GET /ui/ssh", c.need(store.RoleViewer, c.ssh))
	c.mux.Handle("GET /ui/acme", c.need(store.RoleViewer, c.acmeAccounts))
	c.mux.Handle("GET /ui/acme/accounts/{id}", c.need(store.RoleViewer, c.acmeAccount))
	c.mux.Handle("POST /ui/acme/eab", c.need(store.RoleAdmin, c.createEAB))
	c.mux.Handle("GET /ui/operators", c.need(store.RoleAdmin, c.operators))
	c.mux.Handle("POST /ui/operators", c.need(store.RoleAdmin, c.addOperator))
	c.mux.Handle("GET /ui/operators/{name}/remove", c.need(store.RoleAdmin, c.removeOperatorForm))
	c.mux.Handle("POST /ui/operators/{name}/remove", c.need(store.RoleAdmin, c.removeOperator))
	c.mux.HandleFunc("/ui/", func(w http.ResponseWriter, r *http.Request) {
		c.fail(w, r, nil, errs.New(errs.NotFound, "there is no console page %s; the dashboard is at /ui/", r.URL.Path))
	})
	return c
}

// ServeHTTP answers /ui/ with the console's security headers on every
// answer, and refuses state-changing requests a browser sends from another
// origin before any form is read.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Strict-Transport-Security", "max-age=31536000")
	if !strings.HasPrefix(r.URL.Path, "/ui/static/") {
		h.Set("Cache-Control", "no-store")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := c.cop.Check(r); err != nil {
		c.fail(w, r, nil, errs.New(errs.Rejected, "a form sent from another site was refused: use the console's own pages"))
		return
	}
	c.mux.ServeHTTP(w, r)
}

// page is what every page template gets.
type page struct {
	Title    string
	Nav      string // the section it belongs to
	Operator Operator
	CSRF     string
	Now      time.Time
	Data     any
}

// render writes page name with status.
func (c *Console) render(w http.ResponseWriter, status int, name string, p page) {
	t, ok := c.pages[name]
	if !ok {
		panic("console: no page " + name)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := t.ExecuteTemplate(w, "layout", p); err != nil {
		c.o.Log.Error("console page", "page", name, "err", err)
	}
}

// fail shows err as a page: its message unless it is internal.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	status := http.StatusInternalServerError
	if c.o.StatusOf != nil {
		status = c.o.StatusOf(err)
	}
	msg := err.Error()
	if errs.KindOf(err) == errs.Internal {
		c.o.Log.Error("console request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "something went wrong on the server; its log says what"
	}
	p := page{Title: http.StatusText(status), Now: c.o.Now(), Data: msg}
	if s != nil {
		p.Operator, p.CSRF = s.Operator, s.csrf
	}
	c.render(w, status, "error", p)
}
