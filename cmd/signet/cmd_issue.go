package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"signet/internal/ca"
	"signet/internal/config"
	"signet/internal/errs"
	"signet/internal/home"
	"signet/internal/kms"
	"signet/internal/profile"
	"signet/internal/store"
)

func cmdIssue(e *env, args []string) error {
	f := newFlags(e, "issue")
	var u unlockFlags
	u.register(f)
	var dns, ips, emails, xmpp listFlag
	authority := f.String("authority", "default", "issuing authority `NAME`")
	csrFile := f.String("csr", "", "certificate request `FILE` (PEM or DER)")
	newKey := f.String("new-key", "", "generate the subject key into `FILE` (PKCS#8, encrypted with --key-passphrase)")
	keyType := f.String("key-type", "", "`TYPE` of the key --new-key generates (default: rsa-3072 for libvirt authorities, else ecdsa-p256)")
	keyPass := f.String("key-passphrase", "", "passphrase `SOURCE` that encrypts the --new-key file: prompt, env:VAR or file:PATH")
	clearKey := f.Bool("clear-key", false, "write the --new-key file unencrypted (mode 0600), for services that cannot read an encrypted key")
	subjectKey := f.String("subject-key", "", "certify the key at `URI` (pkcs11:token=T;object=NAME): the request is signed on the token")
	toToken := f.Bool("to-token", false, "with --subject-key: also write the certificate to the token beside the key")
	f.Var(&dns, "dns", "DNS `NAME` to certify (repeatable, or comma-separated)")
	f.Var(&ips, "ip", "IP `ADDRESS` to certify (repeatable)")
	f.Var(&emails, "email", "email `ADDRESS` to certify (repeatable)")
	f.Var(&xmpp, "xmpp-domain", "XMPP service `DOMAIN` that gets SRV-IDs (xmpp authorities; default: the first --dns)")
	cn := f.String("cn", "", "subject common `NAME` (default: the first name)")
	usage := f.String("usage", "", "`server` or client, for authorities that issue both (vpn, libvirt)")
	validity := f.String("validity", "", "`DURATION` such as 720h, 30d (default: the authority's)")
	out := f.String("out", "", "write the certificate and its chain (PEM) to `FILE`; - for standard output")
	certOut := f.String("cert-out", "", "write the certificate alone (PEM) to `FILE`")
	chainOut := f.String("chain-out", "", "write the issuing chain without the root (PEM) to `FILE`")
	asJSON := f.Bool("json", false, "print the result as JSON")
	if err := f.parseNone(args); err != nil {
		return err
	}
	if n := countSet(*csrFile, *newKey, *subjectKey); n != 1 {
		return badUsage("give exactly one of --csr FILE, --new-key FILE and --subject-key URI")
	}
	if *subjectKey != "" && !strings.HasPrefix(*subjectKey, "pkcs11:") {
		return badUsage("--subject-key names a key on a token, pkcs11:token=T;object=NAME; for other keys give --csr")
	}
	if *toToken && *subjectKey == "" {
		return badUsage("--to-token writes the certificate beside the --subject-key URI: give --subject-key")
	}
	if *out == "" && *certOut == "" {
		return badUsage("--out FILE or --cert-out FILE is required (--out - for standard output)")
	}
	// Checked before openHome, which may prompt for a PIN.
	switch {
	case *clearKey && *newKey == "":
		return badUsage("--clear-key applies to the key --new-key generates; signet never writes other keys in the clear")
	case *clearKey && *keyPass != "":
		return badUsage("give --key-passphrase SOURCE or --clear-key, not both")
	case *newKey != "" && *keyPass == "" && !*clearKey:
		return badUsage("--new-key needs --key-passphrase SOURCE, or --clear-key to write the key unencrypted")
	}
	var kt kms.KeyType
	if *keyType != "" {
		var err error
		if kt, err = kms.ParseKeyType(*keyType); err != nil {
			return err
		}
	}
	req := ca.Request{
		Authority: *authority, CommonName: *cn, DNSNames: dns, EmailAddresses: emails,
		XMPPDomains: xmpp, Usage: profile.Usage(*usage), Actor: "cli",
	}
	for _, s := range ips {
		ip := net.ParseIP(s)
		if ip == nil {
			return errs.New(errs.Malformed, "--ip %q is not an IP address", s)
		}
		req.IPAddresses = append(req.IPAddresses, ip)
	}
	if *validity != "" {
		d, err := config.ParseDuration(*validity)
		if err != nil {
			return err
		}
		req.Validity = d
	}
	if *csrFile != "" {
		raw, err := os.ReadFile(*csrFile)
		if err != nil {
			return errs.Wrap(errs.NotFound, err, "reading the CSR")
		}
		if req.CSR, err = ca.ParseCSR(raw); err != nil {
			return err
		}
	}
	h, err := openHome(e, f, u.unlock())
	if err != nil {
		return err
	}
	defer h.Close()
	// Every output is opened before anything is signed: a path signet
	// cannot write fails the command with nothing issued or recorded.
	var outs outputs
	defer outs.discard()
	for _, o := range []struct{ flag, path, what string }{
		{"--out", *out, "certificate and chain"}, {"--cert-out", *certOut, "certificate"}, {"--chain-out", *chainOut, "chain"},
	} {
		if o.path != "" && o.path != "-" {
			if *newKey != "" && filepath.Clean(o.path) == filepath.Clean(*newKey) {
				return badUsage("%s and --new-key name the same file %s", o.flag, o.path)
			}
			if err := outs.open(o.flag, o.path, o.what); err != nil {
				return err
			}
		}
	}
	if *newKey != "" {
		if kt == "" {
			kt = kms.ECDSAP256
			if a, err := h.Store.Authority(e.ctx, *authority); err == nil && a.Purpose == string(profile.Libvirt) {
				kt = kms.RSA3072 // libvirt takes RSA keys only
			}
		}
		if req.PublicKey, err = newSubjectKey(e, *newKey, kt, *keyPass, *clearKey); err != nil {
			return err
		}
	}
	if *subjectKey != "" {
		if *subjectKey, err = h.AdoptKeyURI(e.ctx, *subjectKey); err != nil {
			return err
		}
		signer, err := h.Keys.Signer(e.ctx, *subjectKey)
		if err != nil {
			return err
		}
		if err := refuseCAKey(e.ctx, h, *subjectKey, signer.Public()); err != nil {
			return err
		}
		der, err := subjectCSR(signer, *cn, dns, emails)
		if err != nil {
			return err
		}
		if req.CSR, err = ca.ParseCSR(der); err != nil {
			return err
		}
	}
	iss, err := h.CA.Issue(e.ctx, req)
	if err != nil {
		if *newKey != "" {
			// No certificate names the key: leave nothing behind, so a
			// corrected retry can write the same file.
			os.Remove(*newKey)
		}
		var purpose profile.Purpose
		if a, aerr := h.Store.Authority(e.ctx, *authority); aerr == nil {
			purpose = profile.Purpose(a.Purpose)
		}
		return issueHint(err, req, purpose)
	}
	if dropped := droppedCSRNames(req); len(dropped) > 0 {
		fmt.Fprintf(e.stderr, "signet issue: note: the certificate leaves out the CSR's %s, since --dns, --ip and --email replace the names a CSR asks for (repeat them with --dns to keep them)\n", strings.Join(dropped, ", "))
	}
	if *clearKey {
		fmt.Fprintf(e.stderr, "warning: %s holds the private key unencrypted (--clear-key): anyone who can read it can use the certificate\n", *newKey)
	}
	var onToken *kms.Imported
	if *toToken {
		cert, err := x509.ParseCertificate(iss.DER)
		if err != nil {
			return errs.Wrap(errs.Internal, err, "parsing certificate %s", iss.Serial)
		}
		res, err := h.Keys.ImportCertificate(e.ctx, *subjectKey, cert, nil)
		if err != nil {
			return errs.Wrap(errs.KindOf(err), err, "certificate %s was issued and recorded, but not written to the token (get it with signet show %s --pem, then signet key import-cert)", iss.Serial, iss.Serial)
		}
		onToken = &res
	}
	leaf := pemCerts(iss.DER)
	chain := pemCerts(iss.Chain...)
	if *out == "-" {
		if _, err := io.WriteString(e.stdout, leaf+chain); err != nil {
			return err
		}
	}
	if err := outs.commit(map[string]string{"certificate and chain": leaf + chain, "certificate": leaf, "chain": chain}); err != nil {
		return errs.Wrap(errs.Unavailable, err, "certificate %s was issued and recorded, but writing it failed", iss.Serial)
	}
	if *out == "-" {
		return nil
	}
	rec, err := h.Store.Certificate(e.ctx, iss.Serial)
	if err != nil {
		return err
	}
	if *asJSON {
		j := struct {
			ca.CertificateView
			File  string        `json:"file,omitempty"`
			Cert  string        `json:"cert_file,omitempty"`
			Chain string        `json:"chain_file,omitempty"`
			Key   string        `json:"key_file,omitempty"`
			Token *kms.Imported `json:"token,omitempty"`
		}{ca.View(rec, time.Now()), *out, *certOut, *chainOut, *newKey, onToken}
		return writeJSON(e.stdout, j)
	}
	fmt.Fprintf(e.stdout, "issued %s by %s for %s, valid until %s\n",
		iss.Serial, rec.Authority, strings.Join(names(rec), ", "), iss.NotAfter.Format(time.RFC3339))
	for _, w := range outs.written {
		fmt.Fprintf(e.stdout, "wrote %s\n", w)
	}
	if onToken != nil {
		cert, _ := x509.ParseCertificate(iss.DER)
		printImported(e, *onToken, cert)
	}
	return nil
}

// newSubjectKey generates the key --new-key names: encrypted with the
// passphrase from pass, or, with clear, unencrypted for services that
// cannot read an encrypted key. Only these freshly generated subject keys
// can ever be written in the clear: CA keys stay behind kms.Manager, which
// writes software keys encrypted only.
func newSubjectKey(e *env, path string, kt kms.KeyType, pass string, inClear bool) (crypto.PublicKey, error) {
	if !inClear {
		src, err := kms.ParseSource(pass)
		if err != nil {
			return nil, err
		}
		keys := kms.NewManager(kms.Options{Passphrase: src})
		defer keys.Close()
		signer, err := keys.Generate(e.ctx, "file:"+path, kt)
		if err != nil {
			return nil, err
		}
		return signer.Public(), nil
	}
	priv, err := kms.NewSoftwareKey(kt)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "encoding the new key")
	}
	fk, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, errs.New(errs.Conflict, "--new-key %s exists already; signet never overwrites a key", path)
	}
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "--new-key %s", path)
	}
	err = pem.Encode(fk, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	clear(der)
	if cerr := fk.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, errs.Wrap(errs.Unavailable, err, "writing --new-key %s", path)
	}
	return priv.Public(), nil
}

func pemCerts(ders ...[]byte) string {
	var b strings.Builder
	for _, der := range ders {
		pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	return b.String()
}

// outputs are files opened before signing and written after: each is a
// temporary file beside its target, renamed over it once complete, so a
// path that cannot be written fails before anything is issued, and a
// failure leaves the target as it was.
type outputs struct {
	files   []output
	written []string // "path (what)" of each file committed, in order
}

type output struct {
	path, what string
	tmp        *os.File
}

func (o *outputs) open(flag, path, what string) error {
	for _, f := range o.files {
		if filepath.Clean(f.path) == filepath.Clean(path) {
			return badUsage("%s %s: the same file is given twice", flag, path)
		}
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return errs.New(errs.Malformed, "%s %s is a directory; give a file name", flag, path)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return errs.Wrap(errs.Unavailable, err, "%s %s cannot be written (nothing was issued)", flag, path)
	}
	o.files = append(o.files, output{path: path, what: what, tmp: tmp})
	return nil
}

// commit writes each file its content (by what it holds) and renames it
// into place.
func (o *outputs) commit(content map[string]string) error {
	for _, f := range o.files {
		if err := f.tmp.Chmod(0o644); err != nil {
			return err
		}
		if _, err := f.tmp.WriteString(content[f.what]); err != nil {
			return err
		}
		if err := f.tmp.Close(); err != nil {
			return err
		}
		if err := os.Rename(f.tmp.Name(), f.path); err != nil {
			return err
		}
		o.written = append(o.written, f.path+" ("+f.what+")")
	}
	o.files = nil
	return nil
}

// discard removes the temporary files not committed.
func (o *outputs) discard() {
	for _, f := range o.files {
		f.tmp.Close()
		os.Remove(f.tmp.Name())
	}
}

func names(c store.Certificate) []string {
	n := append(append(append([]string{}, c.DNSNames...), c.IPAddresses...), c.EmailAddresses...)
	if len(n) == 0 {
		n = []string{c.Subject}
	}
	return n
}

func cmdList(e *env, args []string) error {
	f := newFlags(e, "list")
	authority := f.String("authority", "", "only certificates of authority `NAME`")
	expiring := f.String("expiring", "", "only certificates that expire within `DURATION` (e.g. 7d)")
	all := f.Bool("all", false, "include expired certificates")
	limit := f.Int("limit", 0, "at most `N` certificates (0: all)")
	st := f.String("status", "", "only certificates in `STATUS`: valid, revoked or expired")
	name := f.String("name", "", "only certificates with `TEXT` in one of their names or their subject")
	internal := f.Bool("internal", false, "include the certificates signet issued for itself (serve's TLS and OCSP responder certificates)")
	deployed := f.Bool("deployed", false, "add a DEPLOYED column: the endpoints signet check --record found serving each certificate (JSON always has them)")
	asJSON := f.Bool("json", false, "print JSON")
	if err := f.parseNone(args); err != nil {
		return err
	}
	now := time.Now()
	filter := store.Filter{Authority: *authority, Limit: *limit, NameContains: *name, WithInternal: *internal}
	if !*all {
		filter.NotAfterAfter = now
	}
	var within time.Duration
	if *expiring != "" {
		d, err := config.ParseDuration(*expiring)
		if err != nil {
			return err
		}
		within = d
	}
	if !filter.Narrow(*st, within, now) {
		return badUsage("--status %q: give valid, revoked or expired", *st)
	}
	h, err := openHomeToRead(e, f)
	if err != nil {
		return err
	}
	defer h.Close()
	certs, err := h.Store.Certificates(e.ctx, filter)
	if err != nil {
		return err
	}
	checks, err := h.Store.EndpointChecks(e.ctx, "")
	if err != nil {
		return err
	}
	at := map[string][]store.EndpointCheck{}
	for _, c := range checks {
		at[c.Serial] = append(at[c.Serial], c)
	}
	if *asJSON {
		list := make([]ca.CertificateView, len(certs))
		for i, c := range certs {
			list[i] = ca.View(c, now)
			list[i].Deployed = ca.Deployments(at[c.Serial])
		}
		return writeJSON(e.stdout, list)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	header := "SERIAL\tAUTHORITY\tSTATUS\tNOT AFTER\tNAMES"
	if *deployed {
		header += "\tDEPLOYED"
	}
	fmt.Fprintln(tw, header)
	for _, c := range certs {
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s", c.Serial, c.Authority, status(c, now), c.NotAfter.UTC().Format(time.RFC3339), strings.Join(names(c), ","))
		if *deployed {
			var where []string
			for _, d := range at[c.Serial] {
				where = append(where, d.Endpoint+" ("+d.Verdict+")")
			}
			line += "\t" + cmp.Or(strings.Join(where, ","), "-")
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}

func status(c store.Certificate, now time.Time) string {
	if c.Status == "valid" && now.After(c.NotAfter) {
		return "expired"
	}
	return string(c.Status)
}

func cmdShow(e *env, args []string) error {
	f := newFlags(e, "show")
	asPEM := f.Bool("pem", false, "print only the certificate as PEM")
	asJSON := f.Bool("json", false, "print JSON (with the PEM)")
	rest, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return badUsage("give one SERIAL")
	}
	h, err := openHomeToRead(e, f)
	if err != nil {
		return err
	}
	defer h.Close()
	c, err := h.Store.Certificate(e.ctx, strings.ToLower(strings.ReplaceAll(rest[0], ":", "")))
	if err != nil {
		return notFound(err, "no certificate %s in this home: signet list --all shows the serials it issued", rest[0])
	}
	if *asPEM {
		return pem.Encode(e.stdout, &pem.Block{Type: "CERTIFICATE", Bytes: c.DER})
	}
	deployed, err := h.Store.EndpointChecks(e.ctx, c.Serial)
	if err != nil {
		return err
	}
	if *asJSON {
		j := ca.View(c, time.Now())
		j.WithPEM(c.DER)
		j.Deployed = ca.Deployments(deployed)
		return writeJSON(e.stdout, j)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "serial:\t%s\nauthority:\t%s\nsubject:\t%s\nnames:\t%s\nnot before:\t%s\nnot after:\t%s\nstatus:\t%s\nrequester:\t%s\n",
		c.Serial, c.Authority, c.Subject, strings.Join(names(c), ", "), c.NotBefore.UTC().Format(time.RFC3339),
		c.NotAfter.UTC().Format(time.RFC3339), status(c, time.Now()), c.Requester)
	if c.Status == store.Revoked {
		fmt.Fprintf(tw, "revoked at:\t%s\nreason:\t%s\n", c.RevokedAt.UTC().Format(time.RFC3339), ca.ReasonName(c.RevocationReason))
	}
	if c.Internal {
		fmt.Fprintf(tw, "internal:\tyes (issued by signet for itself)\n")
	}
	for _, d := range deployed {
		at := d.Endpoint
		if d.StartTLS != "" {
			at += " (" + d.StartTLS + ")"
		}
		fmt.Fprintf(tw, "deployed:\t%s as %s, check %s at %s\n", at, d.Name, d.Verdict, d.CheckedAt.UTC().Format(time.RFC3339))
	}
	return tw.Flush()
}

func cmdRoot(e *env, args []string) error {
	f := newFlags(e, "root")
	authority := f.String("authority", "", "print the trust anchor of authority `NAME` instead: its own certificate if self-signed, else the root")
	if err := f.parseNone(args); err != nil {
		return err
	}
	h, err := openHomeToRead(e, f)
	if err != nil {
		return err
	}
	defer h.Close()
	anchor, err := h.CA.Anchor(e.ctx, cmp.Or(*authority, ca.RootName))
	if err != nil && *authority != "" {
		return notFound(err, "no authority %q in this home: signet authority list shows them", *authority)
	}
	if err != nil {
		return err
	}
	return pem.Encode(e.stdout, &pem.Block{Type: "CERTIFICATE", Bytes: anchor.Raw})
}

func cmdChain(e *env, args []string) error {
	f := newFlags(e, "chain")
	authority := f.String("authority", "default", "authority `NAME`")
	withRoot := f.Bool("root", false, "end the chain with its trust anchor (the root; a self-signed authority's chain ends with itself already)")
	if err := f.parseNone(args); err != nil {
		return err
	}
	h, err := openHomeToRead(e, f)
	if err != nil {
		return err
	}
	defer h.Close()
	chain, err := h.CA.Chain(e.ctx, *authority)
	if err != nil {
		return notFound(err, "no authority %q in this home: signet authority list shows them", *authority)
	}
	if *withRoot {
		anchor, err := h.CA.Anchor(e.ctx, *authority)
		if err != nil {
			return err
		}
		if len(chain) == 0 || !bytes.Equal(chain[len(chain)-1], anchor.Raw) {
			chain = append(chain, anchor.Raw)
		}
	}
	for _, der := range chain {
		if err := pem.Encode(e.stdout, &pem.Block{Type: "CERTIFICATE", Bytes: der}); err != nil {
			return err
		}
	}
	return nil
}

// countSet counts the non-empty values.
func countSet(v ...string) int {
	n := 0
	for _, s := range v {
		if s != "" {
			n++
		}
	}
	return n
}

// refuseCAKey refuses a --subject-key that is one of the home's CA keys: a
// leaf certificate for it (and on its token) would give a CA key a second
// use, and its holder a client identity.
func refuseCAKey(ctx context.Context, h *home.Home, uri string, pub crypto.PublicKey) error {
	auths, err := h.Store.Authorities(ctx)
	if err != nil {
		return err
	}
	for _, a := range auths {
		same := a.KeyURI == uri
		if c, err := x509.ParseCertificate(a.CertDER); err == nil {
			if eq, ok := c.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); ok && eq.Equal(pub) {
				same = true
			}
		}
		if same {
			return errs.New(errs.Rejected, "--subject-key %s is the key of authority %q: certify the user's own key, never a CA key", uri, a.Name)
		}
	}
	return nil
}

// notFound says, for a store's "not found" error, what is missing and
// where to look, in place of the store's words; other errors pass as they are.
func notFound(err error, format string, args ...any) error {
	if errs.KindOf(err) == errs.NotFound {
		return errs.New(errs.NotFound, format, args...)
	}
	return err
}

// hostNames reports whether req asks for a DNS name or an IP address, given
// that names given explicitly replace the CSR's (ca.Request).
func hostNames(req ca.Request) bool {
	if len(req.DNSNames)+len(req.IPAddresses)+len(req.EmailAddresses) > 0 || req.CSR == nil {
		return len(req.DNSNames)+len(req.IPAddresses) > 0
	}
	return len(req.CSR.DNSNames)+len(req.CSR.IPAddresses) > 0
}

// issueHint adds to an issue refused for want of host names what the
// operator most likely meant: the name a CSR carries only as its CN, or
// a client certificate of an authority that issues both sides.
func issueHint(err error, req ca.Request, p profile.Purpose) error {
	if errs.KindOf(err) != errs.Rejected || hostNames(req) || req.Usage != "" {
		return err
	}
	client := ""
	if slices.Contains(p.Usages(), profile.Client) && slices.Contains(p.Usages(), profile.Server) {
		client = " (or --usage client for a client certificate)"
	}
	if req.CSR != nil && req.CSR.Subject.CommonName != "" && len(req.DNSNames)+len(req.EmailAddresses) == 0 {
		cn := req.CSR.Subject.CommonName
		return errs.New(errs.Rejected, "%v: the CSR names %q only as its subject CN, where TLS clients no longer look; give it with --dns %s%s", err, cn, cn, client)
	}
	if client != "" {
		return errs.New(errs.Rejected, "%v: give --dns or --ip for a server, or --usage client for a client certificate", err)
	}
	return err
}

// droppedCSRNames lists the names the CSR asks for that explicit --dns,
// --ip and --email replaced and left out.
func droppedCSRNames(req ca.Request) []string {
	if req.CSR == nil || len(req.DNSNames)+len(req.IPAddresses)+len(req.EmailAddresses) == 0 {
		return nil
	}
	kept := map[string]bool{}
	for _, n := range append(req.DNSNames, req.EmailAddresses...) {
		kept[strings.ToLower(n)] = true
	}
	for _, ip := range req.IPAddresses {
		kept[ip.String()] = true
	}
	var dropped []string
	for _, n := range append(append([]string{}, req.CSR.DNSNames...), req.CSR.EmailAddresses...) {
		if !kept[strings.ToLower(n)] {
			dropped = append(dropped, n)
		}
	}
	for _, ip := range req.CSR.IPAddresses {
		if !kept[ip.String()] {
			dropped = append(dropped, ip.String())
		}
	}
	return dropped
}
