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
	"signet/internal/store"
)

// cmdCheck checks TLS endpoints (internal/check) and, with a home, what
// signet issued for them. Its exit status is the verdict: 0 ok, 1 warnings,
// 2 failures (or no check at all).
func cmdCheck(e *env, args []string) error {
	f := newFlags(e, "check")
	starttls := f.String("starttls", "", "enter TLS with STARTTLS of `PROTOCOL`: xmpp, xmpp-server, smtp or postgres")
	name := f.String("name", "", "the `NAME` the certificate must carry (default: HOST; for XMPP the service domain)")
	caFile := f.String("ca", "", "verify the chain against the certificates in PEM `FILE` (default: the home's roots, else the system's)")
	record := f.Bool("record", false, "record the result in the home: where the certificate is deployed, for signet show, the read API, metrics and check --all")
	all := f.Bool("all", false, "check again every endpoint recorded in the home, and record the results")
	asJSON := f.Bool("json", false, "print JSON")
	timeout := f.Duration("timeout", 10*time.Second, "bound on each connection and each download")
	rest, err := f.parse(args)
	if err != nil {
		return err
	}
	var targets []store.EndpointCheck
	switch {
	case *all && (len(rest) > 0 || *starttls != "" || *name != ""):
		return badUsage("--all checks the recorded endpoints: give no endpoint, --starttls or --name with it")
	case !*all && len(rest) != 1:
		return badUsage("give one endpoint HOST[:PORT], or --all")
	case !*all:
		addr, err := endpoint(rest[0], *starttls)
		if err != nil {
			return badUsage("%v", err)
		}
		targets = []store.EndpointCheck{{Endpoint: addr, StartTLS: *starttls, Name: *name}}
	}
	var roots *x509.CertPool
	rootsFrom := ""
	if *caFile != "" {
		if roots, err = readRoots(*caFile); err != nil {
			return exitStatus{2, err}
		}
		rootsFrom = *caFile
	}
	var h *home.Home
	switch {
	case f.home != "" && !hasHome(f.home):
		err = fmt.Errorf("--home %s holds no signet home (no %s): give the home's directory, or leave --home out to check against --ca or the system's roots", f.home, config.FileName)
	case *record || *all:
		h, err = openHome(e, f, unlockNone)
	case hasHome(f.homeDir()):
		h, err = openHomeToRead(e, f)
	}
	if err != nil {
		return exitStatus{2, err}
	}
	if h != nil {
		defer h.Close()
		if roots == nil {
			if roots, err = homeAnchors(e, h); err != nil {
				return exitStatus{2, err}
			}
			rootsFrom = "the anchors of home " + h.Dir
		}
	}
	if *all {
		if targets, err = h.Store.EndpointChecks(e.ctx, ""); err != nil {
			return exitStatus{2, err}
		}
		if len(targets) == 0 && !*asJSON {
			fmt.Fprintln(e.stdout, "no endpoint recorded: signet check HOST[:PORT] --record records one")
		}
	}
	verdict := check.OK
	reports := []*check.Report{}
	for _, tg := range targets {
		r, err := check.Run(e.ctx, check.Options{Address: tg.Endpoint, StartTLS: tg.StartTLS, Name: tg.Name,
			Roots: roots, RootsFrom: rootsFrom, Timeout: *timeout})
		if err != nil {
			return exitStatus{2, err}
		}
		if h != nil {
			if err := check.Issued(e.ctx, r, h.Store, time.Now()); err != nil {
				return exitStatus{2, err}
			}
		}
		if *record || *all {
			if err := h.Store.RecordEndpointCheck(e.ctx, recorded(r)); err != nil {
				return exitStatus{2, err}
			}
		}
		verdict = max(verdict, r.Verdict)
		reports = append(reports, r)
		if !*asJSON {
			printCheck(e, r)
		}
	}
	if *asJSON {
		var err error
		if *all {
			err = writeJSON(e.stdout, reports)
		} else {
			err = writeJSON(e.stdout, reports[0])
		}
		if err != nil {
			return err
		}
	}
	return verdictStatus(verdict)
}

// recorded is what the store keeps of a report.
func recorded(r *check.Report) store.EndpointCheck {
	c := store.EndpointCheck{Endpoint: r.Endpoint, StartTLS: r.StartTLS, Name: r.Name, Serial: r.Serial,
		CheckedAt: r.Time, Verdict: max(r.Verdict, check.OK).String()}
	if r.NotAfter != nil {
		c.NotAfter = *r.NotAfter
	}
	return c
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
