package main

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"signet/internal/errs"
	"signet/internal/home"
	"signet/internal/server"
)

func cmdServe(e *env, args []string) error {
	f := newFlags(e, "serve")
	var u unlockFlags
	u.register(f)
	listen := f.String("listen", "", "`ADDR` to listen on (default from signet.toml: 127.0.0.1:8443)")
	logJSON := f.Bool("log-json", false, "write logs as JSON")
	debug := f.Bool("debug", false, "log every request")
	var af acmeFlags
	af.register(f)
	if rest, err := f.parse(args); err != nil {
		return err
	} else if len(rest) > 0 {
		return badUsage("unexpected argument %q", rest[0])
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
		h, rep, err = home.Init(e.ctx, dir, home.InitOptions{Unlock: u.unlock(), Actor: "serve"})
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
	addr := *listen
	if addr == "" {
		addr = h.Config.Listen
	}
	acmeSrv, err := acmeServer(e.ctx, h, log, af)
	if err != nil {
		return err
	}
	defer acmeSrv.Close()
	srv := server.New(server.Options{
		CA: h.CA, Store: h.Store, Log: log, AdminToken: token, ACME: acmeSrv,
		Authority: h.Config.Server.Authority, Names: h.Config.Server.Names,
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
	leaf, _ := x509.ParseCertificate(tlsConfig.Certificates[0].Certificate[0])
	root, err := h.CA.Root(e.ctx)
	if err != nil {
		return err
	}
	// The root is public; a copy in the home makes the first curl easy.
	rootFile := filepath.Join(h.Dir, "root.pem")
	if err := os.WriteFile(rootFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}), 0o644); err != nil {
		return errs.Wrap(errs.Unavailable, err, "writing %s", rootFile)
	}
	fmt.Fprintf(e.stdout, "signet serving https://%s (home %s)\n  root certificate: %s\n  health: curl --cacert %s https://%s/health\n  admin token for /api/v1: %s\n  ACME directory: https://%s/acme/%s/directory\n  server certificate %x valid until %s\n",
		ln.Addr(), h.Dir, rootFile, rootFile, ln.Addr(), h.Config.Server.AdminToken, ln.Addr(), h.Config.Server.Authority, leaf.SerialNumber, leaf.NotAfter.Format(time.RFC3339))
	log.Info("listening", "addr", ln.Addr().String(), "home", h.Dir)
	return srv.Serve(e.ctx, ln, tlsConfig)
}
