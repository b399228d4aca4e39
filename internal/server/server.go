// Package server owns signet's HTTPS listener: its TLS configuration and
// own certificate, the routes, authentication of the API, and graceful
// shutdown. Every certificate it hands out comes from ca.Issue.
package server

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"signet/internal/acme/eab"
	"signet/internal/audit"
	"signet/internal/ca"
	"signet/internal/errs"
	"signet/internal/limits"
	"signet/internal/profile"
	"signet/internal/sshca"
	"signet/internal/store"
)

// Store is the part of the store the API reads itself: authorities,
// certificates, SSH certificates and keys, ACME accounts and orders, audit
// events, operators, the endpoints signet check recorded.
type Store interface {
	Authority(ctx context.Context, name string) (store.Authority, error)
	Authorities(ctx context.Context) ([]store.Authority, error)
	Certificate(ctx context.Context, serial string) (store.Certificate, error)
	Certificates(ctx context.Context, f store.Filter) ([]store.Certificate, error)
	AuditEvents(ctx context.Context, f store.EventFilter) ([]audit.Event, error)
	SSHCertificates(ctx context.Context, f store.SSHFilter) ([]store.SSHCertificate, error)
	SSHKeys(ctx context.Context, authority string) ([]store.SSHKey, error)
	ACMEAccount(ctx context.Context, id string) (store.ACMEAccount, error)
	ACMEAccounts(ctx context.Context, f store.ACMEAccountFilter) ([]store.ACMEAccount, error)
	ACMEOrders(ctx context.Context, f store.ACMEOrderFilter) ([]store.ACMEOrder, error)
	// Operator and OperatorByToken authenticate named operators.
	Operator(ctx context.Context, name string) (store.Operator, error)
	OperatorByToken(ctx context.Context, sum [sha256.Size]byte) (store.Operator, error)
	CertificateCounts(ctx context.Context) ([]store.CertificateCount, error)
	EndpointChecks(ctx context.Context, serial string) ([]store.EndpointCheck, error)
}

// Options configure a Server.
type Options struct {
	CA             *ca.CA
	SSH            *sshca.CA // nil: no SSH endpoints
	Store          Store
	Log            *slog.Logger
	AdminToken     []byte   // bearer token for /api/v1; empty disables token authentication
	AdminAuthority string   // tls-client authority whose certificates authenticate to /api/v1; "" none
	Authority      string   // authority that issues the server's own certificate
	Names          []string // names in that certificate; nil: localhost, 127.0.0.1, ::1, host name
	// OwnKeyFile is the server's TLS key, a node key made on first use
	// (never a CA key), and OwnCertFile its certificate, reused across
	// starts while valid (nodekey.go). "": a fresh in-memory key each start.
	OwnKeyFile, OwnCertFile string
	ShutdownTimeout         time.Duration
	ACME                    http.Handler // serves /acme/ when set (acme/wfe)
	// Limits are the rate limits of /api/v1 (certificates per authority,
	// failed authentications per source address); nil limits nothing.
	Limits *limits.Limits
	// EAB seals the external account binding keys the console creates;
	// nil: it creates none.
	EAB *eab.Sealer
	// Audit, if set, verifies the audit log in the background; GET
	// /api/v1/audit/verification answers its latest outcome.
	Audit *audit.Watch
	// Warnings, when set, says what /health lists for the operator
	// (acme/wfe's: the admin authority has ACME on and is not served).
	Warnings func(context.Context) []string
}

// Server is the HTTPS front end.
type Server struct {
	o         Options
	tokenHash [32]byte
	mux       *http.ServeMux
	adminCA   *x509.Certificate // issuer of administrators' client certificates; nil: none
	adminPool *x509.CertPool    // adminCA alone: the trust anchor for them

	own        *ownCert    // the server's own certificate, once TLSConfig made it
	selfSigned atomic.Bool // own is self-signed: its authority could not issue it at start
}

// New builds the routes.
func New(o Options) *Server {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	s := &Server{o: o, tokenHash: sha256.Sum256(o.AdminToken), mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /health", s.health)
	s.mux.Handle("POST /api/v1/authorities/{name}/certificates", s.authenticated(store.RoleOperator, s.issue))
	s.mux.Handle("GET /api/v1/authorities", s.authenticated(store.RoleViewer, s.authorities))
	s.mux.Handle("GET /api/v1/status", s.authenticated(store.RoleViewer, s.status))
	s.mux.Handle("POST /api/v1/unlock", s.authenticated(store.RoleOperator, s.unlock))
	s.mux.Handle("POST /api/v1/lock", s.authenticated(store.RoleOperator, s.lock))
	s.mux.Handle("GET /api/v1/certificates", s.authenticated(store.RoleViewer, s.certificates))
	s.mux.Handle("GET /api/v1/certificates/{serial}", s.authenticated(store.RoleViewer, s.certificate))
	s.mux.Handle("GET /api/v1/audit/events", s.authenticated(store.RoleViewer, s.auditEvents))
	s.mux.Handle("GET /api/v1/audit/verification", s.authenticated(store.RoleViewer, s.auditVerification))
	s.mux.Handle("GET /api/v1/ssh/certificates", s.authenticated(store.RoleViewer, s.sshCertificates))
	s.mux.Handle("GET /api/v1/ssh/keys", s.authenticated(store.RoleViewer, s.sshKeys))
	s.mux.Handle("GET /api/v1/acme/accounts", s.authenticated(store.RoleViewer, s.acmeAccounts))
	s.mux.Handle("GET /api/v1/acme/accounts/{id}/orders", s.authenticated(store.RoleViewer, s.acmeOrders))
	s.mux.Handle("GET /api/v1/endpoints", s.authenticated(store.RoleViewer, s.endpoints))
	s.mux.Handle("POST /api/v1/certificates/{serial}/revoke", s.authenticated(store.RoleOperator, s.revoke))
	if o.SSH != nil {
		s.mux.Handle("POST /api/v1/authorities/{name}/ssh/certificates", s.authenticated(store.RoleOperator, s.sshSign))
		s.mux.HandleFunc("GET /api/v1/authorities/{name}/ssh/trust", s.sshTrust)
		s.mux.HandleFunc("GET /api/v1/authorities/{name}/ssh/krl", s.sshKRL)
		s.mux.HandleFunc("GET /api/v1/ssh/host-renewal", s.sshHostRenewalNonce)
		s.mux.HandleFunc("POST /api/v1/ssh/host-renewal", s.sshHostRenewal)
	}
	if o.ACME != nil {
		s.mux.Handle("/acme/", o.ACME)
	}
	s.mountConsole()
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, s.o.Log, errs.New(errs.NotFound, "no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return s
}

// Handler returns the HTTP handler, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.logged(s.sameOrigin(s.mux)) }

// sameOrigin refuses state-changing API requests (POST, PUT, DELETE...)
// that a browser sends from another origin, as its Sec-Fetch-Site or
// Origin header says, whatever their content type or body. Browsers attach
// a client certificate to any request, SameSite rules or not, so a page
// elsewhere could otherwise make an administrator's browser issue or
// revoke; one rule for certificate and token alike. Clients that send
// neither header (curl, scripts, the CLI) are not browsers and pass.
func (s *Server) sameOrigin(h http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			if err := cop.Check(r); err != nil {
				writeProblem(w, r, s.o.Log, errs.New(errs.Rejected,
					"cross-origin %s %s refused: the API takes state-changing requests only from its own origin or from non-browser clients", r.Method, r.URL.Path))
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// tls12Suites are the only TLS 1.2 cipher suites served: ECDHE with an
// AEAD. This narrows Go's defaults, which still accept CBC suites with
// SHA-1 MACs; TLS 1.3 suites are not configurable and all AEAD.
var tls12Suites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// TLSConfig issues the server's own certificate through the one issuance
// path and returns a TLS 1.2+ configuration that renews it in time.
//
// With an admin authority, clients are asked for a certificate but it is
// not verified during the handshake: one that is unrelated, expired or
// revoked must not cost its holder /health or ACME. Only the admin routes
// check it (admin), and refuse it with a problem document.
func (s *Server) TLSConfig(ctx context.Context) (*tls.Config, error) {
	issue := func(ctx context.Context) (*tls.Certificate, error) {
		c, err := s.issueOwn(ctx)
		if err == nil {
			s.selfSigned.Store(false)
		}
		return c, err
	}
	own, err := newOwnCert(ctx, issue, s.o.Log)
	switch k := errs.KindOf(err); {
	case err == nil:
	case k == errs.Locked || k == errs.Unavailable || k == errs.Disabled:
		// Its authority cannot sign now: serve anyway, self-signed,
		// until it can (Recheck).
		own = &ownCert{issue: issue, log: s.o.Log, now: time.Now, renewed: make(chan struct{}, 1)}
		c, serr := s.selfSignedCert()
		if serr != nil {
			return nil, serr
		}
		own.cur.Store(c)
		s.selfSigned.Store(true)
		s.o.Log.Warn("the server's own certificate is self-signed: its authority cannot issue it now; clients verify it by its fingerprint until it is unlocked",
			"authority", s.o.Authority, "sha256", Fingerprint(c.Leaf), "err", err)
	default:
		return nil, err
	}
	s.own = own
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: tls12Suites, GetCertificate: own.get}
	if s.o.AdminAuthority != "" {
		if s.adminCA, err = s.adminAuthority(ctx); err != nil {
			return nil, err
		}
		s.adminPool = x509.NewCertPool()
		s.adminPool.AddCert(s.adminCA)
		cfg.ClientCAs = s.adminPool // only names the acceptable issuer to clients
		cfg.ClientAuth = tls.RequestClientCert
	}
	return cfg, nil
}

// SelfSigned reports whether the server serves a self-signed certificate
// (its authority could not issue one at start).
func (s *Server) SelfSigned() bool { return s.selfSigned.Load() }

// Fingerprint is a certificate's SHA-256 fingerprint as signet prints it
// and signet unlock --fingerprint takes it: hex, colon-separated.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// selfSignedCert makes a certificate for the server's names signed by its
// own fresh in-memory key, for when its authority cannot issue one.
func (s *Server) selfSignedCert() (*tls.Certificate, error) {
	dns, ips := splitNames(s.names())
	return ca.SelfSignedServer(dns, ips)
}

// names are the names the server's certificate holds: Options.Names, or
// localhost, its loopback addresses and the host name.
func (s *Server) names() []string {
	names := s.o.Names
	if len(names) == 0 {
		names = []string{"localhost", "127.0.0.1", "::1"}
		if host, err := os.Hostname(); err == nil && host != "" && host != "localhost" {
			names = append(names, strings.ToLower(host))
		}
	}
	return names
}

// splitNames sets DNS names and IP addresses apart.
func splitNames(names []string) (dns []string, ips []net.IP) {
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip)
		} else {
			dns = append(dns, n)
		}
	}
	return dns, ips
}

// issueOwn returns the server's certificate for its names: with
// OwnKeyFile, the stored one while it is to be used (nodekey.go), else one
// issued now for the node key and stored; without, one issued for a fresh
// in-memory key that is never written anywhere.
func (s *Server) issueOwn(ctx context.Context) (*tls.Certificate, error) {
	var key crypto.Signer
	var err error
	if s.o.OwnKeyFile != "" {
		key, err = s.nodeKey(ctx)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return nil, errs.Wrap(errs.KindOf(err), err, "server key")
	}
	names := s.names()
	if s.o.OwnKeyFile != "" && s.o.OwnCertFile != "" {
		if c := s.storedOwn(ctx, key, names, time.Now()); c != nil {
			return c, nil
		}
	}
	req := ca.Request{Authority: s.o.Authority, PublicKey: key.Public(), Actor: "server", Internal: true}
	req.DNSNames, req.IPAddresses = splitNames(names)
	iss, err := s.o.CA.Issue(ctx, req)
	if err != nil {
		return nil, errs.Wrap(errs.KindOf(err), err, "issuing the server certificate from authority %q", s.o.Authority)
	}
	leaf, err := x509.ParseCertificate(iss.DER)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "server certificate")
	}
	c := &tls.Certificate{Certificate: append([][]byte{iss.DER}, iss.Chain...), PrivateKey: key, Leaf: leaf}
	if s.o.OwnCertFile != "" {
		if err := s.storeOwn(c); err != nil {
			s.o.Log.Warn("cannot store the server certificate; the next start issues another", "err", err)
		}
	}
	return c, nil
}

// adminAuthority loads the certificate of the authority whose client
// certificates are administrators, refusing one that cannot issue them.
func (s *Server) adminAuthority(ctx context.Context) (*x509.Certificate, error) {
	a, err := s.o.Store.Authority(ctx, s.o.AdminAuthority)
	if err != nil {
		return nil, errs.Wrap(errs.KindOf(err), err, "admin authority %q", s.o.AdminAuthority)
	}
	if a.Purpose != string(profile.TLSClient) {
		return nil, errs.New(errs.Malformed, "admin authority %q has purpose %s; it must be tls-client", a.Name, a.Purpose)
	}
	return x509.ParseCertificate(a.CertDER)
}

// Serve answers on ln until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, ln net.Listener, tlsConfig *tls.Config) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(s.o.Log.Handler(), slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	s.o.Log.Info("shutting down", "timeout", s.o.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.o.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if e := <-done; !errors.Is(e, http.ErrServerClosed) {
		err = errors.Join(err, e)
	}
	return err
}

// authenticated admits requests bearing the admin token, an operator's
// token, or a valid, unrevoked client certificate from the admin
// authority, whose role allows need (store.RoleViewer, ...). A failed
// authentication counts towards the client's back-off; a role too small
// is refused with 403.
func (s *Server) authenticated(need string, h func(w http.ResponseWriter, r *http.Request, actor string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.o.Limits.CanAuthenticate(r); err != nil {
			writeProblem(w, r, s.o.Log, err)
			return
		}
		actor, role, err := s.admin(r)
		if err != nil {
			s.o.Limits.AuthenticationFailed(r)
			writeProblem(w, r, s.o.Log, err)
			return
		}
		if !store.RoleAllows(role, need) {
			writeProblem(w, r, s.o.Log, errs.New(errs.Rejected, "%s has the role %s; %s %s needs the role %s or above", actor, role, r.Method, r.URL.Path, need))
			return
		}
		h(w, r, actor)
	})
}

// admin names the authenticated operator for the audit log, and its role:
// "api:admin-token" (the built-in admin), "operator:NAME", or
// "api:client-cert:CN" (admin) for an admin certificate whose CN names no
// operator.
func (s *Server) admin(r *http.Request) (actor, role string, err error) {
	token, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return s.identify(r, token, bearer)
}

// identify is the one place that maps what a client presents to an
// operator, for the API and the console alike: a token when bearer is
// set, else the request's client certificate.
func (s *Server) identify(r *http.Request, token string, bearer bool) (actor, role string, err error) {
	if bearer {
		sum := sha256.Sum256([]byte(token))
		if len(s.o.AdminToken) > 0 && subtle.ConstantTimeCompare(sum[:], s.tokenHash[:]) == 1 {
			return "api:admin-token", store.RoleAdmin, nil
		}
		// Looked up by the SHA-256 of a 256-bit random token: the
		// lookup's timing tells nothing about a token not yet known.
		op, err := s.o.Store.OperatorByToken(r.Context(), sum)
		if err == nil && subtle.ConstantTimeCompare(op.TokenHash, sum[:]) == 1 {
			return "operator:" + op.Name, op.Role, nil
		}
		if err != nil && errs.KindOf(err) != errs.NotFound {
			return "", "", err
		}
		return "", "", errs.New(errs.Unauthorized, "the bearer token is neither the admin token nor an operator's token")
	}
	if s.adminCA != nil && r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		cn, err := s.certAdmin(r)
		if err != nil {
			return "", "", err
		}
		if op, err := s.o.Store.Operator(r.Context(), cn); err == nil {
			return "operator:" + op.Name, op.Role, nil
		} else if errs.KindOf(err) != errs.NotFound {
			return "", "", err
		}
		return "api:client-cert:" + cn, store.RoleAdmin, nil
	}
	return "", "", errs.New(errs.Unauthorized, "this endpoint needs 'Authorization: Bearer <token>' (the admin token or an operator's) or a client certificate from the admin authority")
}

// certAdmin verifies the client certificate the handshake took unverified
// (its holder proved the key): issued by the admin authority for client
// authentication, within its validity, and recorded as valid (not revoked)
// in the store.
func (s *Server) certAdmin(r *http.Request) (cn string, err error) {
	leaf := r.TLS.PeerCertificates[0]
	serial := ca.Serial(leaf.SerialNumber)
	// The admin authority is the only anchor and no intermediates are
	// offered: the leaf must be signed by it directly.
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: s.adminPool,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return "", errs.New(errs.Unauthorized, "client certificate %s (%q) is not a valid client certificate of admin authority %q: %v",
			serial, leaf.Subject.CommonName, s.o.AdminAuthority, err)
	}
	if ok, err := s.adminCertRecorded(r.Context(), serial); err != nil {
		return "", err
	} else if !ok {
		return "", errs.New(errs.Unauthorized, "client certificate %s is unknown or revoked", serial)
	}
	return leaf.Subject.CommonName, nil
}

// adminCertRecorded says whether the store has the certificate with serial
// as a valid (unrevoked), unexpired certificate of the admin authority: at
// sign-in (certAdmin) and on every request of a console session signed in
// with it (recheck).
func (s *Server) adminCertRecorded(ctx context.Context, serial string) (bool, error) {
	c, err := s.o.Store.Certificate(ctx, serial)
	if errs.KindOf(err) == errs.NotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return c.Status == store.Valid && c.Authority == s.o.AdminAuthority && time.Now().Before(c.NotAfter), nil
}

// statusRecorder remembers the status for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (s *Server) logged(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Requests are logged at debug level only; when that is off, skip
		// the recorder and the log call's allocations on the hot path.
		if !s.o.Log.Enabled(r.Context(), slog.LevelDebug) {
			h.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rec, r)
		s.o.Log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
			"remote", r.RemoteAddr, "duration", time.Since(start))
	})
}
