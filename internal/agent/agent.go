// Package agent keeps certificates renewed and installed: signet agent.
// For each certificate of the client configuration it asks the ACME
// server's renewal information (RFC 9773) when to renew, else renews at two
// thirds of the lifetime; it checks a new certificate against its key, its
// names and the CA bundle before installing it beside the previous set,
// then runs the reload command (an argument list, no shell). A failed
// renewal or reload leaves the working certificate in place.
package agent

import (
	"cmp"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"signet/internal/acme/client"
	"signet/internal/errs"
)

// maxBackoff caps the wait between failed renewals.
const maxBackoff = 6 * time.Hour

// ariRetry is how long the agent waits to ask a server again for renewal
// information it could not give, and the longest it sleeps.
const ariRetry = time.Hour

// Agent renews the certificates of one configuration.
type Agent struct {
	Config   *client.Config
	StateDir string
	Keys     client.Keys
	Client   *client.Client
	Roots    *x509.CertPool // the chains must verify to these; nil: the system's
	Out      io.Writer      // one line per decision
	DryRun   bool           // decide and say, change nothing
	Now      func() time.Time
	// Others are renewed in each cycle beside the ACME certificates.
	Others []Renewer
}

// Renewer is something else the agent keeps renewed, such as an SSH host
// certificate renewed by the host itself (sshclient.Host): each
// cycle calls Renew, which renews if due (not with dryRun; regardless of
// backoff with force), says what it did on out and returns when it wants
// to be called again.
type Renewer interface {
	Name() string
	Renew(ctx context.Context, now time.Time, force, dryRun bool, out io.Writer) (next time.Time, err error)
}

func (a *Agent) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// Cycle checks every certificate once and renews those due; with force,
// also those waiting after a failure. It returns when to run again and the
// renewals that failed.
func (a *Agent) Cycle(ctx context.Context, force bool) (time.Time, error) {
	if !a.DryRun {
		unlock, err := Lock(a.StateDir)
		if err != nil {
			return a.now().Add(time.Minute), err
		}
		defer unlock()
	}
	st, err := LoadState(a.StateDir)
	if err != nil {
		return time.Time{}, err
	}
	next := a.now().Add(ariRetry)
	var failed []error
	for _, m := range a.Config.Certificates {
		cs := st.get(m.Name)
		if err := a.one(ctx, m, cs, force); err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", m.Name, err))
		}
		// The next wake: the next renewal or question to the server, or
		// the retry of a failing renewal (which its backoff spaces).
		end := a.now()
		for _, t := range []time.Time{cs.RenewAt, cs.CheckAt} {
			if t.After(end) && t.Before(next) {
				next = t
			}
		}
		if cs.Failures > 0 && cs.RetryAt.Before(next) {
			next = cs.RetryAt
		}
	}
	for _, r := range a.Others {
		t, err := r.Renew(ctx, a.now(), force, a.DryRun, a.Out)
		if err != nil {
			failed = append(failed, fmt.Errorf("%s: %w", r.Name(), err))
		}
		if !t.IsZero() && t.Before(next) {
			next = t
		}
	}
	if !a.DryRun {
		if err := st.Save(a.StateDir); err != nil {
			return next, err
		}
	}
	return next, errors.Join(failed...)
}

// one decides about one certificate and renews it if due.
func (a *Agent) one(ctx context.Context, m client.Certificate, cs *CertState, force bool) error {
	now := a.now()
	cur := a.installed(m)
	var replaces *x509.Certificate
	switch {
	case cur == nil:
		cs.RenewAt, cs.ARI = now, false
	default:
		if serial := fmt.Sprintf("%x", cur.SerialNumber); serial != cs.Serial {
			// Installed by someone else, or state lost: start afresh.
			*cs = CertState{Serial: serial, Failures: cs.Failures, RetryAt: cs.RetryAt, Error: cs.Error}
		}
		cs.NotAfter = cur.NotAfter
		a.schedule(ctx, cur, cs, now, force)
		if cs.ARI {
			replaces = cur
		}
	}
	if now.Before(cs.RenewAt) {
		cs.Failures, cs.RetryAt, cs.Error = 0, time.Time{}, ""
		fmt.Fprintf(a.Out, "%s: not due; renewal at %s\n", m.Name, cs.RenewAt.UTC().Format(time.RFC3339))
		return nil
	}
	if !force && !cs.RetryAt.IsZero() && now.Before(cs.RetryAt) {
		fmt.Fprintf(a.Out, "%s: due; retrying at %s after %d failures\n", m.Name, cs.RetryAt.UTC().Format(time.RFC3339), cs.Failures)
		return nil
	}
	if a.DryRun {
		fmt.Fprintf(a.Out, "%s: due; would renew (dry run)\n", m.Name)
		return nil
	}
	leaf, err := a.renew(ctx, m, replaces)
	if err != nil {
		cs.Failures++
		backoff := time.Duration(a.Config.RetryBackoff)
		if backoff <= 0 {
			backoff = time.Minute
		}
		for i := 1; i < cs.Failures && backoff < maxBackoff; i++ {
			backoff *= 2
		}
		cs.RetryAt, cs.Error = now.Add(min(backoff, maxBackoff)), err.Error()
		fmt.Fprintf(a.Out, "%s: renewal failed (%d in a row), the installed certificate stays; retrying at %s: %v\n", m.Name, cs.Failures, cs.RetryAt.UTC().Format(time.RFC3339), err)
		return err
	}
	*cs = CertState{Serial: fmt.Sprintf("%x", leaf.SerialNumber), NotAfter: leaf.NotAfter, Renewed: now, RenewAt: twoThirds(leaf)}
	fmt.Fprintf(a.Out, "%s: renewed, serial %x, expires %s\n", m.Name, leaf.SerialNumber, leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

func twoThirds(c *x509.Certificate) time.Time {
	return c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) * 2 / 3)
}

// schedule sets cs.RenewAt for the installed certificate: a time in the
// server's suggested window, kept while the window stands, else the last
// window known for this certificate, else two thirds of its lifetime. The
// server is asked again after its Retry-After, or now with force.
func (a *Agent) schedule(ctx context.Context, cur *x509.Certificate, cs *CertState, now time.Time, force bool) {
	if !force && !cs.CheckAt.IsZero() && now.Before(cs.CheckAt) && !cs.RenewAt.IsZero() {
		return
	}
	info, err := a.Client.RenewalInfo(ctx, cur)
	if err != nil {
		if !cs.ARI {
			cs.RenewAt = twoThirds(cur)
		}
		cs.CheckAt = now.Add(ariRetry)
		return
	}
	if !cs.ARI || cs.Window != [2]time.Time{info.Start, info.End} {
		// RFC 9773 §4.2: a uniformly random time in the window, which
		// spreads clients out; a window open already when it is first
		// seen (as for a revoked certificate) means now.
		cs.RenewAt = info.Start.Add(rand.N(info.End.Sub(info.Start) + 1))
		if !now.Before(info.Start) {
			cs.RenewAt = now
		}
		cs.ARI, cs.Window = true, [2]time.Time{info.Start, info.End}
	}
	cs.CheckAt = now.Add(cmp.Or(info.RetryAfter, ariRetry))
}

// installed reads the certificate installed for m, nil if none.
func (a *Agent) installed(m client.Certificate) *x509.Certificate {
	path := a.Config.Path(m.CertFile)
	if path == "" {
		path = a.Config.Path(m.FullchainFile)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	b, _ := pem.Decode(data)
	if b == nil {
		return nil
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil
	}
	return c
}

// renew obtains a new certificate for m, checks it and installs it with
// its key, then runs the reload command.
func (a *Agent) renew(ctx context.Context, m client.Certificate, replaces *x509.Certificate) (*x509.Certificate, error) {
	ch := m.Challenges
	ch.Webroot = a.Config.Path(ch.Webroot)
	ch.SecretSrc = a.Config.Source(ch.SecretSrc)
	solver, err := ch.Solver()
	if err != nil {
		return nil, err
	}
	var key crypto.Signer
	var keyPEM []byte
	if m.Key != "" {
		key, err = a.Keys.OpenOrGenerate(ctx, a.Config.KeyURI(m.Key), "key")
	} else {
		key, keyPEM, err = a.Keys.NewClearKey()
	}
	if err != nil {
		return nil, err
	}
	var ips []net.IP
	for _, s := range m.IP {
		ips = append(ips, net.ParseIP(s))
	}
	if err := a.register(ctx); err != nil {
		return nil, err
	}
	order := client.Order{DNSNames: m.DNS, IPs: ips, Key: key, Solver: solver, Profile: m.Profile, Replaces: replaces}
	ders, err := a.Client.Obtain(ctx, order)
	if replaces != nil && client.IsProblem(err, "alreadyReplaced") {
		// An earlier attempt's order names the certificate already.
		fmt.Fprintf(a.Out, "%s: the server refused the order replacing serial %x (%v); ordering without replaces\n", m.Name, replaces.SerialNumber, err)
		order.Replaces = nil
		ders, err = a.Client.Obtain(ctx, order)
	}
	if err != nil {
		return nil, err
	}
	leaf, err := a.check(m, ders, key)
	if err != nil {
		return nil, err
	}
	files, err := a.files(m, ders, keyPEM)
	if err != nil {
		return nil, err
	}
	restore, err := install(files)
	if err != nil {
		return nil, err
	}
	if len(m.Reload) > 0 {
		cmd := exec.CommandContext(ctx, m.Reload[0], m.Reload[1:]...)
		if out, err := cmd.CombinedOutput(); err != nil {
			rerr := restore()
			return nil, errors.Join(errs.New(errs.Unavailable, "the reload command %s failed (%v): %s; the previous certificate is back in place", strconv.Quote(strings.Join(m.Reload, " ")), err, strings.TrimSpace(string(out))), rerr)
		}
	}
	return leaf, nil
}

// register finds or creates the account, with the configuration's
// external account binding if it has one.
func (a *Agent) register(ctx context.Context) error {
	c := a.Config
	if c.EABKID == "" {
		return a.Client.Register(ctx, nil)
	}
	eab, err := client.EAB(c.EABKID, c.Source(c.EABHMAC))
	if err != nil {
		return err
	}
	return a.Client.Register(ctx, eab)
}

// check verifies a new chain before anything is installed: the leaf is for
// key, names every configured name, and chains to the roots.
func (a *Agent) check(m client.Certificate, ders [][]byte, key crypto.Signer) (*x509.Certificate, error) {
	certs := make([]*x509.Certificate, len(ders))
	for i, d := range ders {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, errs.Wrap(errs.Rejected, err, "the server's chain holds a certificate that does not parse; nothing installed")
		}
		certs[i] = c
	}
	leaf := certs[0]
	if !client.SamePublic(leaf.PublicKey, key.Public()) {
		return nil, errs.New(errs.Rejected, "the new certificate is not for the certificate key; nothing installed")
	}
	for _, n := range m.DNS {
		if !slices.Contains(leaf.DNSNames, n) {
			return nil, errs.New(errs.Rejected, "the new certificate does not name %s; nothing installed", n)
		}
	}
	for _, s := range m.IP {
		if !slices.ContainsFunc(leaf.IPAddresses, func(ip net.IP) bool { return ip.Equal(net.ParseIP(s)) }) {
			return nil, errs.New(errs.Rejected, "the new certificate does not name %s; nothing installed", s)
		}
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: a.Roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, errs.Wrap(errs.Rejected, err, "the new certificate does not chain to the CA bundle; nothing installed")
	}
	return leaf, nil
}

// file is one file to install.
type file struct {
	path     string
	mode     os.FileMode
	data     []byte
	uid, gid int
}

func (a *Agent) files(m client.Certificate, ders [][]byte, keyPEM []byte) ([]file, error) {
	mode, _ := client.ParseMode(m.Mode, 0o644)
	keyMode, _ := client.ParseMode(m.KeyMode, 0o600)
	uid, gid := -1, -1
	if m.Owner != "" {
		u, err := user.Lookup(m.Owner)
		if err != nil {
			return nil, errs.New(errs.Malformed, "certificate %s: owner %q is not a user here", m.Name, m.Owner)
		}
		uid, _ = strconv.Atoi(u.Uid)
	}
	if m.Group != "" {
		g, err := user.LookupGroup(m.Group)
		if err != nil {
			return nil, errs.New(errs.Malformed, "certificate %s: group %q is not a group here", m.Name, m.Group)
		}
		gid, _ = strconv.Atoi(g.Gid)
	}
	var fs []file
	add := func(path string, mode os.FileMode, data []byte) {
		if path != "" {
			fs = append(fs, file{a.Config.Path(path), mode, data, uid, gid})
		}
	}
	if keyPEM != nil {
		add(m.KeyFile, keyMode, keyPEM)
	}
	add(m.ChainFile, mode, client.PEMCerts(ders[1:]...))
	add(m.FullchainFile, mode, client.PEMCerts(ders...))
	add(m.CertFile, mode, client.PEMCerts(ders[0]))
	return fs, nil
}

// install writes every file beside its target, then moves each target to
// TARGET.prev and the new file into place. If a step fails, the targets
// moved so far come back, so the set is replaced whole or not at all.
// restore puts the previous set back (a target that had none is removed).
func install(fs []file) (restore func() error, err error) {
	tmps := make([]string, len(fs))
	defer func() {
		for _, t := range tmps {
			if t != "" {
				os.Remove(t)
			}
		}
	}()
	for i, f := range fs {
		t, err := os.CreateTemp(filepath.Dir(f.path), "."+filepath.Base(f.path)+".new*")
		if err != nil {
			return nil, errs.Wrap(errs.Unavailable, err, "installing %s", f.path)
		}
		tmps[i] = t.Name()
		_, err = t.Write(f.data)
		if err == nil {
			err = t.Chmod(f.mode)
		}
		if err == nil && (f.uid >= 0 || f.gid >= 0) {
			err = t.Chown(f.uid, f.gid)
		}
		if err == nil {
			err = t.Sync()
		}
		if cerr := t.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, errs.Wrap(errs.Unavailable, err, "installing %s", f.path)
		}
	}
	type moved struct{ path, prev string }
	var done []moved
	restore = func() error {
		var errl []error
		for _, d := range slices.Backward(done) {
			if d.prev == "" {
				errl = append(errl, os.Remove(d.path))
			} else {
				errl = append(errl, os.Rename(d.prev, d.path))
			}
		}
		return errors.Join(errl...)
	}
	for i, f := range fs {
		prev := ""
		if _, err := os.Lstat(f.path); err == nil {
			prev = f.path + ".prev"
			os.Remove(prev)
			if err := os.Link(f.path, prev); err != nil {
				return nil, errors.Join(errs.Wrap(errs.Unavailable, err, "keeping %s", f.path), restore())
			}
		}
		if err := os.Rename(tmps[i], f.path); err != nil {
			return nil, errors.Join(errs.Wrap(errs.Unavailable, err, "installing %s", f.path), restore())
		}
		tmps[i] = ""
		done = append(done, moved{f.path, prev})
	}
	return restore, nil
}
