package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"os"
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
	keyType := f.String("key-type", "ecdsa-p256", "`TYPE` of the key --new-key generates")
	keyPass := f.String("key-passphrase", "", "passphrase `SOURCE` that encrypts the --new-key file: prompt, env:VAR or file:PATH")
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
	if *out == "" {
		return badUsage("--out FILE is required (- for standard output)")
	}
	// Checked before openHome, which may prompt for a PIN.
	if *newKey != "" && *keyPass == "" {
		return badUsage("--new-key needs --key-passphrase SOURCE: signet never writes a private key in the clear")
	}
	kt, err := kms.ParseKeyType(*keyType)
	if err != nil {
		return err
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
	if *newKey != "" {
		src, err := kms.ParseSource(*keyPass)
		if err != nil {
			return err
		}
		keys := kms.NewManager(kms.Options{Passphrase: src})
		defer keys.Close()
		signer, err := keys.Generate(e.ctx, "file:"+*newKey, kt)
		if err != nil {
			return err
		}
		req.PublicKey = signer.Public()
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
		return err
	}
	leaf, err := x509.ParseCertificate(iss.DER)
	if err != nil {
		return errs.Wrap(errs.Internal, err, "parsing certificate %s", iss.Serial)
	}
	var onToken *kms.Imported
	if *toToken {
		res, err := h.Keys.ImportCertificate(e.ctx, *subjectKey, leaf, nil)
		if err != nil {
			return errs.Wrap(errs.KindOf(err), err, "certificate %s was issued and recorded, but not written to the token (get it with signet show %s --pem, then signet key import-cert)", iss.Serial, iss.Serial)
		}
		onToken = &res
	}
	var pemOut strings.Builder
	for _, der := range append([][]byte{iss.DER}, iss.Chain...) {
		pem.Encode(&pemOut, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	if *out == "-" {
		_, err = io.WriteString(e.stdout, pemOut.String())
		return err
	}
	if err := os.WriteFile(*out, []byte(pemOut.String()), 0o644); err != nil {
		return errs.Wrap(errs.Unavailable, err, "certificate %s was issued and recorded, but writing it failed", iss.Serial)
	}
	rec, err := h.Store.Certificate(e.ctx, iss.Serial)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, struct {
			certJSON
			File  string        `json:"file"`
			Token *kms.Imported `json:"token,omitempty"`
		}{toJSON(rec, false), *out, onToken})
	}
	fmt.Fprintf(e.stdout, "issued %s by %s for %s, valid until %s\nwrote %s (certificate and chain)\n",
		iss.Serial, rec.Authority, strings.Join(names(rec), ", "), iss.NotAfter.Format(time.RFC3339), *out)
	if onToken != nil {
		printImported(e, *onToken, leaf)
	}
	return nil
}

// certJSON is the JSON form of a certificate in list and show.
type certJSON struct {
	Serial    string    `json:"serial"`
	Authority string    `json:"authority"`
	Subject   string    `json:"subject"`
	DNS       []string  `json:"dns,omitempty"`
	IP        []string  `json:"ip,omitempty"`
	Email     []string  `json:"email,omitempty"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	Status    string    `json:"status"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	Requester string    `json:"requester,omitempty"`
	PEM       string    `json:"pem,omitempty"`
}

func toJSON(c store.Certificate, withPEM bool) certJSON {
	j := certJSON{
		Serial: c.Serial, Authority: c.Authority, Subject: c.Subject, DNS: c.DNSNames, IP: c.IPAddresses,
		Email: c.EmailAddresses, NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(),
		Status: string(c.Status), RevokedAt: c.RevokedAt, Requester: c.Requester,
	}
	if withPEM {
		j.PEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER}))
	}
	return j
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
	asJSON := f.Bool("json", false, "print JSON")
	if err := f.parseNone(args); err != nil {
		return err
	}
	now := time.Now()
	filter := store.Filter{Authority: *authority, Limit: *limit}
	if !*all {
		filter.NotAfterAfter = now
	}
	if *expiring != "" {
		d, err := config.ParseDuration(*expiring)
		if err != nil {
			return err
		}
		filter.NotAfterBefore = now.Add(d)
	}
	h, err := openHome(e, f, unlockNone)
	if err != nil {
		return err
	}
	defer h.Close()
	certs, err := h.Store.Certificates(e.ctx, filter)
	if err != nil {
		return err
	}
	if *asJSON {
		list := make([]certJSON, len(certs))
		for i, c := range certs {
			list[i] = toJSON(c, false)
		}
		return writeJSON(e.stdout, list)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIAL\tAUTHORITY\tSTATUS\tNOT AFTER\tNAMES")
	for _, c := range certs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Serial, c.Authority, status(c, now), c.NotAfter.UTC().Format(time.RFC3339), strings.Join(names(c), ","))
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
	h, err := openHome(e, f, unlockNone)
	if err != nil {
		return err
	}
	defer h.Close()
	c, err := h.Store.Certificate(e.ctx, strings.ToLower(strings.ReplaceAll(rest[0], ":", "")))
	if err != nil {
		return errs.Wrap(errs.KindOf(err), err, "certificate %s", rest[0])
	}
	switch {
	case *asPEM:
		return pem.Encode(e.stdout, &pem.Block{Type: "CERTIFICATE", Bytes: c.DER})
	case *asJSON:
		return writeJSON(e.stdout, toJSON(c, true))
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "serial:\t%s\nauthority:\t%s\nsubject:\t%s\nnames:\t%s\nnot before:\t%s\nnot after:\t%s\nstatus:\t%s\nrequester:\t%s\n",
		c.Serial, c.Authority, c.Subject, strings.Join(names(c), ", "), c.NotBefore.UTC().Format(time.RFC3339),
		c.NotAfter.UTC().Format(time.RFC3339), status(c, time.Now()), c.Requester)
	return tw.Flush()
}

func cmdRoot(e *env, args []string) error {
	f := newFlags(e, "root")
	if err := f.parseNone(args); err != nil {
		return err
	}
	h, err := openHome(e, f, unlockNone)
	if err != nil {
		return err
	}
	defer h.Close()
	root, err := h.CA.Root(e.ctx)
	if err != nil {
		return err
	}
	return pem.Encode(e.stdout, &pem.Block{Type: "CERTIFICATE", Bytes: root.Raw})
}

func cmdChain(e *env, args []string) error {
	f := newFlags(e, "chain")
	authority := f.String("authority", "default", "authority `NAME`")
	withRoot := f.Bool("root", false, "end the chain with the root")
	if err := f.parseNone(args); err != nil {
		return err
	}
	h, err := openHome(e, f, unlockNone)
	if err != nil {
		return err
	}
	defer h.Close()
	chain, err := h.CA.Chain(e.ctx, *authority)
	if err != nil {
		return errs.Wrap(errs.KindOf(err), err, "authority %q", *authority)
	}
	if *withRoot {
		root, err := h.CA.Root(e.ctx)
		if err != nil {
			return err
		}
		chain = append(chain, root.Raw)
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
