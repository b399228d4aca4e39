package main

import (
	"cmp"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"time"

	"signet/internal/audit"
	"signet/internal/ca"
	"signet/internal/config"
	"signet/internal/errs"
	"signet/internal/home"
	"signet/internal/kms"
	"signet/internal/limits"
	"signet/internal/metrics"
	"signet/internal/revocation"
	"signet/internal/server"
	"signet/internal/store"
)

func cmdServe(e *env, args []string) error {
	f := newFlags(e, "serve")
	var u unlockFlags
	u.register(f)
	listen := f.String("listen", "", "`ADDR` to listen on (default from signet.toml: 127.0.0.1:8443)")
	httpListen := f.String("http-listen", "", "`ADDR` of the plain-HTTP listener for CRLs, OCSP and CA certificates (default from signet.toml: 127.0.0.1:8080)")
	metricsListen := f.String("metrics-listen", "", "`ADDR` of the Prometheus /metrics listener, unauthenticated, or off (default from signet.toml, else $SIGNET_METRICS_LISTEN, else "+config.DefaultMetricsListen+")")
	logJSON := f.Bool("log-json", false, "write logs as JSON")
	debug := f.Bool("debug", false, "log every request")
	verifyEvery := f.Duration("audit-verify-every", time.Hour, "verify the audit log in the background at start and then every `DURATION` (GET /api/v1/audit/verification shows the latest outcome); 0 turns it off")
	adminAuthority := f.String("admin-authority", "", "tls-client authority `NAME` whose certificates may use the API (default from signet.toml)")
	var af acmeFlags
	af.register(f)
	if err := f.parseNone(args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *debug {
		level = slog.LevelDebug
	}
	var handler slog.Handler = slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level})
	if *logJSON {
		handler = slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: level})
	}
	log := slog.New(handler)

	dir := f.homeDir()
	// Every listener is bound before anything is opened or signed: a port
	// in use stops serve before it creates a home, issues its own
	// certificate or signs CRLs.
	cfg := config.Default()
	exists := home.Exists(dir)
	if exists {
		var err error
		if cfg, err = config.Load(dir); err != nil {
			return err
		}
	}
	addr := cmp.Or(*listen, cfg.Listen)
	haddr := cmp.Or(*httpListen, cfg.HTTPListen, config.DefaultHTTPListen)
	ln, err := bind(addr, "--listen", "listen")
	if err != nil {
		return err
	}
	defer ln.Close()
	hln, err := bind(haddr, "--http-listen", "http_listen")
	if err != nil {
		return err
	}
	defer hln.Close()
	var mln net.Listener
	if maddr := cmp.Or(*metricsListen, cfg.MetricsListen, os.Getenv("SIGNET_METRICS_LISTEN"), config.DefaultMetricsListen); maddr != "off" {
		if mln, err = bind(maddr, "--metrics-listen", "metrics_listen"); err != nil {
			return err
		}
		defer mln.Close()
	}

	var h *home.Home
	if exists {
		h, err = home.Open(e.ctx, dir, u.unlock())
	} else {
		var rep *home.Report
		h, rep, err = home.Init(e.ctx, dir, home.InitOptions{Unlock: u.unlock(), Listen: *listen, HTTPListen: *httpListen, Actor: "serve"})
		if err == nil {
			printReport(e.stdout, rep)
		}
	}
	if err != nil {
		return err
	}
	defer h.Close()
	token, err := h.AdminToken()
	if err != nil {
		return errs.Wrap(errs.KindOf(err), err, "reading the admin token")
	}
	if err := kms.CheckLength(token, kms.MinAdminToken, "admin token", kms.Source(h.Config.Server.AdminToken)); err != nil {
		// Homes made before the minimum keep serving with theirs.
		log.Warn("the admin token is too short to resist guessing: replace it", "err", err)
	}
	for _, n := range h.Notices {
		log.Warn(n)
	}
	admin := cmp.Or(*adminAuthority, h.Config.Server.AdminAuthority)
	reg := metrics.New()
	h.CA.Observe(reg)
	h.SSH.Observe(reg)
	if o, ok := h.Store.(store.Observed); ok {
		o.ObserveCommits(reg)
	}
	var lead func(context.Context) (bool, error)
	if shared, ok := h.Store.(store.Shared); ok {
		lead = func(ctx context.Context) (bool, error) { return shared.Lead(ctx, revocation.JobCRL) }
	}
	reg.Store(h.CA, h.Store, lead, log)
	reg.Endpoints(h.Store, lead, log)
	lim, err := limits.New(h.Config.Limits, nil)
	if err != nil {
		return err
	}
	acmeSrv, err := acmeServer(e.ctx, h, log, af, admin, lim, reg.ACME())
	if err != nil {
		return err
	}
	defer acmeSrv.Close()
	sealer, err := h.EABSealer() // the console creates EAB keys
	if err != nil {
		return err
	}
	var watch *audit.Watch
	if *verifyEvery > 0 {
		watch = &audit.Watch{Every: *verifyEvery}
		if shared, ok := h.Store.(store.Shared); ok {
			watch.Lead = func(ctx context.Context) (bool, error) { return shared.Lead(ctx, audit.JobVerify) }
		}
	}
	srv := server.New(server.Options{
		Audit: watch, CA: h.CA, SSH: h.SSH, Store: h.Store, Log: log, AdminToken: token, ACME: acmeSrv, Warnings: acmeSrv.Warnings, Limits: lim, EAB: sealer,
		Authority: h.Config.Server.Authority, Names: h.Config.Server.Names, AdminAuthority: admin,
		ShutdownTimeout: time.Duration(h.Config.Server.ShutdownTimeout),
		OwnKeyFile:      filepath.Join(h.Dir, "server-tls.key"), OwnCertFile: filepath.Join(h.Dir, "server-tls.pem"),
	})
	// Each authority is checked alone: one that cannot sign (locked until
	// signet unlock, its key or token missing, out of service) is logged
	// and shown in /health, and everything else serves.
	srv.Recheck(e.ctx)
	tlsConfig, err := srv.TLSConfig(e.ctx)
	if err != nil {
		return err
	}
	own, err := tlsConfig.GetCertificate(nil)
	if err != nil {
		return err
	}
	leaf := own.Leaf
	root, err := h.CA.Root(e.ctx)
	if err != nil {
		return err
	}
	// The root is public; a copy in the home makes the first curl easy. A
	// self-signed server authority is the anchor of the server's own
	// certificate instead: it gets a copy too.
	rootFile := filepath.Join(h.Dir, "root.pem")
	if err := os.WriteFile(rootFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}), 0o644); err != nil {
		return errs.Wrap(errs.Unavailable, err, "writing %s", rootFile)
	}
	anchor, err := h.CA.Anchor(e.ctx, h.Config.Server.Authority)
	if err != nil {
		return err
	}
	anchorFile := rootFile
	if !anchor.Equal(root) {
		anchorFile = filepath.Join(h.Dir, "server-anchor.pem")
		if err := os.WriteFile(anchorFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: anchor.Raw}), 0o644); err != nil {
			return errs.Wrap(errs.Unavailable, err, "writing %s", anchorFile)
		}
	}

	// Revocation: CRLs and OCSP are signed before the plain listener
	// serves, so that nothing is ever served without them.
	ro := revocation.Options{CA: h.CA, Store: h.Store, Log: log, Metrics: reg.OCSP()}
	if shared, ok := h.Store.(store.Shared); ok {
		ro.Shared = shared // several nodes: one signs, all serve
	}
	if p, ok := h.Store.(store.Published); ok {
		ro.Published = p // what was signed last is served at once after a restart
	}
	rev := revocation.New(ro)
	if err := rev.Refresh(e.ctx); err != nil {
		// An authority that cannot sign now serves what it signed before
		// (or nothing yet) and is retried; it stops no other.
		log.Warn("signing CRLs and OCSP responder certificates failed for some authorities; retrying", "err", err)
	}
	checkpoints, auditKey, err := auditCheckpointer(e.ctx, h)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "signet serving https://%s (home %s)\n  root certificate: %s\n  health: curl --cacert %s https://%s/health\n  admin token for /api/v1: %s\n  console: https://%s/ui/\n",
		ln.Addr(), h.Dir, rootFile, anchorFile, ln.Addr(), strings.TrimPrefix(config.SourceInHome(h.Dir, h.Config.Server.AdminToken), "file:"), ln.Addr())
	auths, err := h.Store.Authorities(e.ctx)
	if err != nil {
		return err
	}
	for _, a := range auths {
		if a.ACME && a.Name != admin { // what the ACME front end serves
			fmt.Fprintf(e.stdout, "  ACME directory: https://%s/acme/%s/directory\n", ln.Addr(), a.Name)
		}
	}
	if srv.SelfSigned() {
		fmt.Fprintf(e.stdout, "  server certificate SELF-SIGNED (authority %q cannot issue it now; unlock it to get one)\n    SHA-256 fingerprint %s\n    signet unlock --fingerprint %s ...\n",
			h.Config.Server.Authority, server.Fingerprint(leaf), server.Fingerprint(leaf))
	} else {
		fmt.Fprintf(e.stdout, "  server certificate %x valid until %s\n", leaf.SerialNumber, leaf.NotAfter.Format(time.RFC3339))
	}
	log.Info("listening", "addr", ln.Addr().String(), "home", h.Dir)
	fmt.Fprintf(e.stdout, "  CRLs, OCSP and CA certificates on http://%s (certificates name %s)\n", hln.Addr(), h.CA.BaseURL(store.Authority{}))
	log.Info("listening", "addr", hln.Addr().String(), "serves", "crl ocsp ca")
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(3)
	if mln != nil {
		fmt.Fprintf(e.stdout, "  metrics on http://%s/metrics\n", mln.Addr())
		log.Info("listening", "addr", mln.Addr().String(), "serves", "metrics")
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := server.ServePlain(ctx, mln, reg.Handler(log), log, time.Duration(h.Config.Server.ShutdownTimeout)); err != nil {
				log.Warn("the metrics listener stopped", "err", err)
			}
		}()
	}
	go func() { defer wg.Done(); rev.Run(ctx) }()
	if watch != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			watch.Run(ctx, h.Store, func(v audit.Verification) {
				log.Error("the audit log does not verify", "state", v.State, "broken_seq", v.BrokenSeq, "reason", v.Reason,
					"row_problems", v.RowProblemCount, "err", v.Error)
			})
		}()
	}
	go func() {
		defer wg.Done()
		checkpoints.Run(ctx, time.Second, time.Minute, func(err error) { log.Warn("signing an audit checkpoint", "err", err) })
	}()
	var plainErr error
	go func() {
		defer wg.Done()
		if plainErr = server.ServePlain(ctx, hln, server.WithAudit(rev.Handler(), checkpoints.Latest, auditKey), log, time.Duration(h.Config.Server.ShutdownTimeout)); plainErr != nil {
			cancel() // a dead CRL/OCSP listener takes the server down with it
		}
	}()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go rereadOnHangup(ctx, hup, log, h.Dir, h.Config, srv.Recheck)
	if err := sdNotify("READY=1"); err != nil {
		log.Warn("cannot tell the service manager that signet is ready", "err", err)
	}
	err = srv.Serve(ctx, ln, tlsConfig)
	sdNotify("STOPPING=1")
	cancel()
	wg.Wait()
	return errors.Join(err, plainErr)
}

// rereadOnHangup re-reads signet.toml on each SIGHUP (from hup) until ctx
// ends, and retries the authorities that cannot sign (recheck). A file
// that no longer loads is reported and the running configuration kept;
// settings that differ from the running ones are named: serve applies
// them at its next start.
func rereadOnHangup(ctx context.Context, hup <-chan os.Signal, log *slog.Logger, dir string, running config.Config, recheck func(context.Context)) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		recheck(ctx)
		cfg, err := config.Load(dir)
		if err != nil {
			log.Error("SIGHUP: signet.toml does not load; still serving as started", "err", err)
			continue
		}
		var changed []string
		rv, cv := reflect.ValueOf(running), reflect.ValueOf(cfg)
		for i := range rv.NumField() {
			tag, _, _ := strings.Cut(rv.Type().Field(i).Tag.Get("toml"), ",")
			a, b := rv.Field(i), cv.Field(i)
			if tag != "" && tag != "-" && !reflect.DeepEqual(a.Interface(), b.Interface()) &&
				!(a.Kind() == reflect.Map && a.Len() == 0 && b.Len() == 0) {
				changed = append(changed, tag)
			}
		}
		if len(changed) == 0 {
			log.Info("SIGHUP: signet.toml re-read, no change")
		} else {
			log.Warn("SIGHUP: signet.toml re-read; these settings changed and take effect when serve restarts", "changed", strings.Join(changed, " "))
		}
	}
}

// bind listens on addr, or says what to do when it cannot: flag and key
// name the setting that chose it.
func bind(addr, flag, key string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, errs.New(errs.Unavailable, "cannot listen on %s (%v): stop what uses it, or give another address with %s or %s in signet.toml", addr, errors.Unwrap(err), flag, key)
	}
	return ln, nil
}

// auditCheckpointer opens (or, in a home made before, makes) the audit key
// and returns what signs checkpoints with it: on several nodes, the node
// that signs CRLs. An audit key locked at start (its PIN or passphrase is
// given at run time) is opened at the first checkpoint after signet
// unlock; until then the verifier key served is the one the home recorded.
func auditCheckpointer(ctx context.Context, h *home.Home) (*audit.Checkpointer, string, error) {
	key, vkey, err := h.AuditKey(ctx, "serve")
	if errs.KindOf(err) == errs.Locked {
		// "" when the key was never opened here: /audit/key then says so.
		b, _ := os.ReadFile(filepath.Join(h.Dir, home.AuditKeyFile))
		vkey, err = strings.TrimSpace(string(b)), nil
	}
	if err != nil {
		return nil, "", err
	}
	var mu sync.Mutex
	sign := func(c audit.Checkpoint) ([]byte, error) {
		mu.Lock()
		defer mu.Unlock()
		if key == nil {
			k, _, err := h.AuditKey(ctx, "serve")
			if err != nil {
				return nil, err
			}
			key = k
		}
		msg, err := ca.SignCheckpoint(key, c)
		if err != nil {
			key = nil // locked again, or the token went away: open it anew next time
		}
		return msg, err
	}
	cp := &audit.Checkpointer{Sign: sign, File: filepath.Join(h.Dir, home.CheckpointsFile), Head: h.Store.AuditHead}
	if shared, ok := h.Store.(store.Shared); ok {
		cp.Lead = func(ctx context.Context) (bool, error) { return shared.Lead(ctx, revocation.JobCRL) }
	}
	return cp, vkey, nil
}
