package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"signet/internal/check"
	"signet/internal/config"
	"signet/internal/home"
)

// cmdCheck checks TLS endpoints (internal/check) and, with a home, what
// signet issued for them. Its exit status is the verdict: 0 ok, 1 warnings,
// 2 failures (or no check at all).
func cmdCheck(e *env, args []string) error {
	f := newFlags(e, "check")
	starttls := f.String("starttls", "", "enter TLS with STARTTLS of `PROTOCOL`: xmpp, xmpp-server, smtp or postgres")
	name := f.String("name", "", "the `NAME` the certificate must carry (default: HOST; for XMPP the service domain)")
	caFile := f.String("ca", "", "verify the chain against the certificates in PEM `FILE` (default: the home's roots, else the system's)")
	asJSON := f.Bool("json", false, "print JSON")
	timeout := f.Duration("timeout", 10*time.Second, "bound on each connection and each download")
	rest, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return badUsage("give one endpoint HOST[:PORT]")
	}
	addr, err := endpoint(rest[0], *starttls)
	if err != nil {
		return badUsage("%v", err)
	}
	o := check.Options{Address: addr, StartTLS: *starttls, Name: *name, Timeout: *timeout}
	var h *home.Home
	if *caFile != "" {
		if o.Roots, err = readRoots(*caFile); err != nil {
			return exitStatus{2, err}
		}
		o.RootsFrom = *caFile
	}
	if hasHome(f.homeDir()) {
		if h, err = openHomeToRead(e, f); err != nil {
			return exitStatus{2, err}
		}
		defer h.Close()
		if o.Roots == nil {
			if o.Roots, err = homeAnchors(e, h); err != nil {
				return exitStatus{2, err}
			}
			o.RootsFrom = "the anchors of home " + h.Dir
		}
	}
	r, err := check.Run(e.ctx, o)
	if err != nil {
		return exitStatus{2, err}
	}
	if h != nil {
		if err := check.Issued(e.ctx, r, h.Store, time.Now()); err != nil {
			return exitStatus{2, err}
		}
	}
	if *asJSON {
		if err := writeJSON(e.stdout, r); err != nil {
			return err
		}
	} else {
		printCheck(e, r)
	}
	return verdictStatus(r.Verdict)
}

// verdictStatus is the exit status of a verdict.
func verdictStatus(v check.Level) error {
	switch v {
	case check.Fail:
		return exitStatus{code: 2}
	case check.Warn:
		return exitStatus{code: 1}
	}
	return nil
}

func printCheck(e *env, r *check.Report) {
	for _, f := range r.Findings {
		fmt.Fprintf(e.stdout, "%-4s  %-10s  %s\n", f.Level, f.Check, f.Message)
	}
	fmt.Fprintf(e.stdout, "%-4s  %-10s  %s\n", r.Verdict, "verdict", r.Endpoint)
}

// endpoint adds the protocol's default port to a HOST without one.
func endpoint(arg, starttls string) (string, error) {
	port, err := check.DefaultPort(starttls)
	if err != nil {
		return "", err
	}
	if _, _, err := net.SplitHostPort(arg); err == nil {
		return arg, nil
	}
	if arg == "" {
		return "", errors.New("the endpoint is empty: give HOST[:PORT]")
	}
	return net.JoinHostPort(arg, port), nil
}

// hasHome reports whether dir holds a signet home (its configuration).
func hasHome(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, config.FileName))
	return !errors.Is(err, fs.ErrNotExist)
}

// homeAnchors are the home's self-signed authorities: its root and any
// self-signed issuing authority. Intermediates are left out so that a
// server that does not send its chain is found incomplete.
func homeAnchors(e *env, h *home.Home) (*x509.CertPool, error) {
	auths, err := h.Store.Authorities(e.ctx)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	for _, a := range auths {
		if a.Parent != "" || len(a.CertDER) == 0 {
			continue
		}
		c, err := x509.ParseCertificate(a.CertDER)
		if err != nil {
			return nil, fmt.Errorf("authority %q's certificate: %w", a.Name, err)
		}
		pool.AddCert(c)
	}
	return pool, nil
}

func readRoots(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--ca: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("--ca %s: %w", path, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("--ca %s holds no PEM certificate: give the roots to trust in PEM", path)
	}
	return pool, nil
}
