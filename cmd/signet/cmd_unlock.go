package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"signet/internal/ca"
	"signet/internal/errs"
	"signet/internal/home"
	"signet/internal/kms"
)

// serverFlags say which running server a command talks to, and how it
// knows it is the right one.
type serverFlags struct {
	url, fingerprint string
}

func (s *serverFlags) register(f *flags) {
	f.StringVar(&s.url, "server", "", "`URL` of the running signet serve (default: https:// and listen from signet.toml)")
	f.StringVar(&s.fingerprint, "fingerprint", "", "SHA-256 `FINGERPRINT` of the server's self-signed certificate, as serve printed it (instead of verifying it against the home's root)")
}

// adminClient talks to a running server's admin API with the home's admin
// token, after verifying the server's certificate: against the anchor of
// the server's authority (the home's root, or that authority if it is
// self-signed), or against the fingerprint serve printed for its
// self-signed certificate. The token is never sent to a server that is not
// verified.
type adminClient struct {
	base  string
	token string
	http  *http.Client
}

func newAdminClient(ctx context.Context, h *home.Home, s serverFlags) (*adminClient, error) {
	base := s.url
	if base == "" {
		base = "https://" + localAddr(h.Config.Listen)
	}
	base = strings.TrimSuffix(base, "/")
	if !strings.HasPrefix(base, "https://") {
		return nil, errs.New(errs.Malformed, "--server %q: give an https:// URL", s.url)
	}
	token, err := h.AdminToken()
	if err != nil {
		return nil, errs.Wrap(errs.KindOf(err), err, "reading the admin token")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.fingerprint != "" {
		want, err := hex.DecodeString(strings.NewReplacer(":", "", " ", "").Replace(s.fingerprint))
		if err != nil || len(want) != sha256.Size {
			return nil, errs.New(errs.Malformed, "--fingerprint %q: give the SHA-256 fingerprint serve printed (64 hex digits, colons allowed)", s.fingerprint)
		}
		// The fingerprint is the whole check: the name and chain of a
		// self-signed certificate say nothing.
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("no server certificate")
			}
			got := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if !bytes.Equal(got[:], want) {
				return fmt.Errorf("the server's certificate has fingerprint %X, not the one given", got)
			}
			return nil
		}
	} else {
		anchor, err := h.CA.Anchor(ctx, h.Config.Server.Authority)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = x509.NewCertPool()
		cfg.RootCAs.AddCert(anchor)
	}
	return &adminClient{base: base, token: strings.TrimSpace(string(token)),
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}}, nil
}

// localAddr is where this node reaches a server listening on addr: a
// wildcard address (0.0.0.0, ::) is reached on the loopback, which the
// server's certificate names.
func localAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip != nil && ip.To4() == nil {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port)
}

// do sends a request with body (JSON) and decodes the answer into out; a
// problem document becomes an error of its kind.
func (c *adminClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return errs.Wrap(errs.Internal, err, "request")
		}
		defer clear(b)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return errs.Wrap(errs.Malformed, err, "server URL %s", c.base)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "no answer from the server at %s", c.base)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "reading the server's answer")
	}
	if resp.StatusCode >= 300 {
		var p struct{ Type, Detail string }
		if json.Unmarshal(data, &p) != nil || p.Detail == "" {
			return errs.New(errs.Unavailable, "the server at %s answered %s", c.base, resp.Status)
		}
		return errs.New(kindNamed(strings.TrimPrefix(p.Type, "urn:signet:error:")), "%s", p.Detail)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return errs.Wrap(errs.Unavailable, err, "the server's answer")
	}
	return nil
}

func kindNamed(name string) errs.Kind {
	for k := errs.Internal; k <= errs.Disabled; k++ {
		if k.String() == name {
			return k
		}
	}
	return errs.Internal
}

// targetFlags name what to unlock or lock.
type targetFlags struct{ authority, token string }

func (t *targetFlags) register(f *flags, verb string) {
	f.StringVar(&t.authority, "authority", "", "`NAME` of the authority whose key to "+verb+" (its token, or the software keys)")
	f.StringVar(&t.token, "token", "", "`LABEL` of the token to "+verb)
}

type statusAnswer struct {
	Authorities []ca.AuthorityStatus `json:"authorities"`
}

func cmdUnlock(e *env, args []string) error {
	f := newFlags(e, "unlock")
	var s serverFlags
	s.register(f)
	var t targetFlags
	t.register(f, "unlock")
	force := f.Bool("force", false, "try the PIN even if the token blocks it at the next wrong one (final try)")
	if err := f.parseNone(args); err != nil {
		return err
	}
	return lockOrUnlock(e, f, s, t, true, *force)
}

func cmdLock(e *env, args []string) error {
	f := newFlags(e, "lock")
	var s serverFlags
	s.register(f)
	var t targetFlags
	t.register(f, "lock")
	if err := f.parseNone(args); err != nil {
		return err
	}
	return lockOrUnlock(e, f, s, t, false, false)
}

// lockOrUnlock asks the running server to unlock (asking the PIN or
// passphrase on the terminal) or lock a token or the software keys. With
// no target given, the one target the server's locked (or, for lock,
// unlocked and unlockable) authorities share is taken.
func lockOrUnlock(e *env, f *flags, s serverFlags, t targetFlags, unlock bool, force bool) error {
	if t.authority != "" && t.token != "" {
		return badUsage("give --authority or --token, not both")
	}
	h, err := openHome(e, f, unlockNone)
	if err != nil {
		return err
	}
	defer h.Close()
	c, err := newAdminClient(e.ctx, h, s)
	if err != nil {
		return err
	}
	var before statusAnswer
	if err := c.do(e.ctx, http.MethodGet, "/api/v1/status", nil, &before); err != nil {
		return err
	}
	label, software, by, err := pickTarget(before.Authorities, t, unlock)
	if err != nil {
		return err
	}
	req := map[string]any{"token": label}
	if by != "" {
		req = map[string]any{"authority": by}
	}
	path, what := "/api/v1/lock", ""
	if unlock {
		if err := pinTries(e.stderr, before.Authorities, label, software, force); err != nil {
			return err
		}
		path = "/api/v1/unlock"
		what = fmt.Sprintf("PIN for token %q", label)
		if software {
			what = "passphrase for the software keys"
		}
		// Asked once; a refused PIN is not tried again (a token blocks after a few).
		secret, err := kms.Source("prompt").Read(what)
		if err != nil {
			return err
		}
		req["secret"] = string(secret)
		clear(secret)
		req["force"] = force
	}
	var after statusAnswer
	err = c.do(e.ctx, http.MethodPost, path, req, &after)
	delete(req, "secret")
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%sed %s on %s\n", verb(unlock), targetText(label, software), c.base)
	for _, a := range after.Authorities {
		if sameTarget(a.Key, label, software) {
			fmt.Fprintf(e.stdout, "  authority %s: %s\n", a.Name, a.State)
		}
	}
	return nil
}

// pinTries warns when the token has seen wrong PINs, and refuses its
// final try (a wrong PIN then blocks it) unless force: checked before the
// PIN is asked, and again by the server.
func pinTries(w io.Writer, list []ca.AuthorityStatus, label string, software, force bool) error {
	if software {
		return nil
	}
	for _, a := range list {
		k := a.Key
		if k.Token != label || k.File != "" {
			continue
		}
		switch {
		case k.PINFinalTry && !force:
			return errs.New(errs.Rejected, "token %q blocks its PIN at the next wrong one (final try): make sure of the PIN, then run signet unlock again with --force", label)
		case k.PINFinalTry:
			fmt.Fprintf(w, "signet: token %q: this is the final try; a wrong PIN blocks it\n", label)
		case k.PINCountLow:
			fmt.Fprintf(w, "signet: token %q has seen a wrong PIN: few tries are left before it blocks\n", label)
		}
		return nil
	}
	return nil
}

func verb(unlock bool) string {
	if unlock {
		return "unlock"
	}
	return "lock"
}

func sameTarget(k kms.Location, label string, software bool) bool {
	if software {
		return k.File != ""
	}
	return k.Token == label && k.File == ""
}

// pickTarget finds the token label (or the software keys) to act on, and
// the authority to name it by: the one given, or for the software keys
// (which have no label) the first that uses them.
func pickTarget(list []ca.AuthorityStatus, t targetFlags, unlock bool) (label string, software bool, by string, err error) {
	if t.token != "" {
		return t.token, false, "", nil
	}
	type target struct {
		label    string
		software bool
		by       string
	}
	var found []target
	for _, a := range list {
		k := a.Key
		if t.authority != "" {
			if a.Name == t.authority {
				return k.Token, k.File != "", a.Name, nil
			}
			continue
		}
		if !k.Unlock || k.Locked != unlock {
			continue
		}
		if !slices.ContainsFunc(found, func(f target) bool { return f.label == k.Token && f.software == (k.File != "") }) {
			found = append(found, target{label: k.Token, software: k.File != "", by: a.Name})
		}
	}
	switch {
	case t.authority != "":
		return "", false, "", errs.New(errs.NotFound, "authority %q not found on the server", t.authority)
	case len(found) == 0 && unlock:
		return "", false, "", errs.New(errs.Conflict, "nothing on the server is locked")
	case len(found) == 0:
		return "", false, "", errs.New(errs.Conflict, "nothing on the server was unlocked with signet unlock")
	case len(found) > 1:
		var names []string
		for _, f := range found {
			names = append(names, targetText(f.label, f.software))
		}
		return "", false, "", badUsage("several can be %sed (%s): give --authority NAME or --token LABEL", verb(unlock), strings.Join(names, ", "))
	}
	if found[0].software {
		return "", true, found[0].by, nil
	}
	return found[0].label, false, "", nil
}

func targetText(label string, software bool) string {
	if software {
		return "software keys"
	}
	return fmt.Sprintf("token %q", label)
}

// cmdStatus shows every authority's status, from the running server when
// one answers, else from the home (opening each key to see if it works).
func cmdStatus(e *env, args []string) error {
	f := newFlags(e, "status")
	var s serverFlags
	s.register(f)
	var u unlockFlags
	u.register(f)
	asJSON := f.Bool("json", false, "print JSON")
	if err := f.parseNone(args); err != nil {
		return err
	}
	h, err := openHome(e, f, u.unlock())
	if err != nil {
		return err
	}
	defer h.Close()
	var ans statusAnswer
	from := ""
	c, err := newAdminClient(e.ctx, h, s)
	if err == nil {
		from = c.base
		err = c.do(e.ctx, http.MethodGet, "/api/v1/status", nil, &ans)
	}
	if err != nil {
		if s.url != "" || s.fingerprint != "" {
			return err // the server asked for did not answer
		}
		fmt.Fprintf(e.stderr, "signet: %v; showing the home's own view\n", err)
		from = "home " + h.Dir
		if ans.Authorities, err = h.CA.Status(e.ctx, h.Store); err != nil {
			return err
		}
	}
	if *asJSON {
		return writeJSON(e.stdout, map[string]any{"from": from, "authorities": ans.Authorities})
	}
	fmt.Fprintf(e.stdout, "from %s\n", from)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AUTHORITY\tPURPOSE\tSTATE\tKEY\tCA EXPIRES\tISSUED\tREVOKED")
	for _, a := range ans.Authorities {
		exp := "-"
		if a.NotAfter != nil {
			exp = a.NotAfter.UTC().Format(time.DateOnly)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\n", a.Name, a.Purpose, a.State, keyText(a.Key), exp, a.Issued, a.Revoked)
	}
	tw.Flush()
	for _, a := range ans.Authorities {
		if a.Reason != "" && a.State != ca.Disabled {
			fmt.Fprintf(e.stdout, "%s %s: %s\n", a.Name, a.State, a.Reason)
		}
	}
	return nil
}

// keyText says where a key is in one line.
func keyText(k kms.Location) string {
	if k.File != "" {
		return "file " + k.File
	}
	s := fmt.Sprintf("token %q object %q", k.Token, k.Object)
	if k.Serial != "" {
		s += " serial " + k.Serial
	}
	if k.Slot != nil {
		s += fmt.Sprintf(" slot %d", *k.Slot)
	}
	if k.Module != "" {
		s += " module " + k.Module
	}
	return s
}
