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
	"path/filepath"
	"strings"
	"sync"
	"time"

	"signet/internal/config"
	"signet/internal/errs"
	"signet/internal/home"
	"signet/internal/kms"
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
	logJSON := f.Bool("log-json", false, "write logs as JSON")
	debug := f.Bool("debug", false, "log every request")
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
	var h *home.Home
	var err error
	if home.Exists(dir) {
		h, err = home.Open(e.ctx, dir, u.unlock())
	} else {
		var rep *home.Report
		h, rep, err = home.Init(e.ctx, dir, home.InitOptions{Unlock: u.unlock(), HTTPListen: *httpListen, Actor: "serve"})
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
	addr := *listen
	if addr == "" {
		addr = h.Config.Listen
	}
	for _, n := range h.Notices {
		log.Warn(n)
	}
	admin := cmp.Or(*adminAuthority, h.Config.Server.AdminAuthority)
	acmeSrv, err := acmeServer(e.ctx, h, log, af, admin)
	if err != nil {
		return err
	}
	defer acmeSrv.Close()
	srv := server.New(server.Options{
		CA: h.CA, SSH: h.SSH, Store: h.Store, Log: log, AdminToken: token, ACME: acmeSrv, Warnings: acmeSrv.Warnings,
		Authority: h.Config.Server.Authority, Names: h.Config.Server.Names, AdminAuthority: admin,
		ShutdownTimeout: time.Duration(h.Config.Server.ShutdownTimeout),
	})
	tlsConfig, err := srv.TLSConfig(e.ctx)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "listening on %s", addr)
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
	// The root is public; a copy in the home makes the first curl easy.
	rootFile := filepath.Join(h.Dir, "root.pem")
	if err := os.WriteFile(rootFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}), 0o644); err != nil {
		return errs.Wrap(errs.Unavailable, err, "writing %s", rootFile)
	}
	fmt.Fprintf(e.stdout, "signet serving https://%s (home %s)\n  root certificate: %s\n  health: curl --cacert %s https://%s/health\n  admin token for /api/v1: %s\n",
		ln.Addr(), h.Dir, rootFile, rootFile, ln.Addr(), strings.TrimPrefix(config.InHome(h.Dir, h.Config.Server.AdminToken), "file:"))
	auths, err := h.Store.Authorities(e.ctx)
	if err != nil {
		return err
	}
	for _, a := range auths {
		if a.ACME && a.Name != admin { // what the ACME front end serves
			fmt.Fprintf(e.stdout, "  ACME directory: https://%s/acme/%s/directory\n", ln.Addr(), a.Name)
		}
	}
	fmt.Fprintf(e.stdout, "  server certificate %x valid until %s\n", leaf.SerialNumber, leaf.NotAfter.Format(time.RFC3339))
	log.Info("listening", "addr", ln.Addr().String(), "home", h.Dir)

	// Revocation: CRLs and OCSP are signed before the plain listener opens,
	// so that nothing is ever served without them.
	haddr := *httpListen
	if haddr == "" {
		haddr = h.Config.HTTPListen
	}
	if haddr == "" {
		haddr = config.DefaultHTTPListen
	}
	ro := revocation.Options{CA: h.CA, Store: h.Store, Log: log}
	if shared, ok := h.Store.(store.Shared); ok {
		ro.Shared = shared // several nodes: one signs, all serve
	}
	rev := revocation.New(ro)
	if err := rev.Refresh(e.ctx); err != nil {
		return errs.Wrap(errs.KindOf(err), err, "signing CRLs and OCSP responder certificates")
	}
	hln, err := net.Listen("tcp", haddr)
	if err != nil {
		ln.Close()
		return errs.Wrap(errs.Unavailable, err, "listening on %s", haddr)
	}
	fmt.Fprintf(e.stdout, "  CRLs, OCSP and CA certificates on http://%s (certificates name %s)\n", hln.Addr(), h.CA.BaseURL(store.Authority{}))
	log.Info("listening", "addr", hln.Addr().String(), "serves", "crl ocsp ca")
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); rev.Run(ctx) }()
	var plainErr error
	go func() {
		defer wg.Done()
		if plainErr = server.ServePlain(ctx, hln, rev.Handler(), log, time.Duration(h.Config.Server.ShutdownTimeout)); plainErr != nil {
			cancel() // a dead CRL/OCSP listener takes the server down with it
		}
	}()
	err = srv.Serve(ctx, ln, tlsConfig)
	cancel()
	wg.Wait()
	return errors.Join(err, plainErr)
}
