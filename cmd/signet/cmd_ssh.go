package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"signet/internal/config"
	"signet/internal/errs"
	"signet/internal/kms"
	"signet/internal/sshca"
	"signet/internal/store"
)

// certFileName is ssh-keygen's convention: id_ed25519.pub → id_ed25519-cert.pub.
func certFileName(pubFile string) string {
	return strings.TrimSuffix(pubFile, ".pub") + "-cert.pub"
}

func cmdSSHSign(e *env, args []string) error {
	f := newFlags(e, "ssh sign")
	var u unlockFlags
	u.register(f)
	var principals, sources listFlag
	authority := f.String("authority", "", "SSH authority `NAME`")
	host := f.Bool("host", false, "sign a host key (ssh-host authority)")
	user := f.Bool("user", false, "sign a user key (ssh-user authority)")
	f.Var(&principals, "principals", "comma-separated `NAMES`: host names for --host, user names for --user")
	validity := f.String("validity", "", "`DURATION` such as 52w, 30d, 12h (default: the authority's)")
	keyID := f.String("key-id", "", "key `ID` recorded in the certificate and its logs (default: the first principal)")
	force := f.String("force-command", "", "user certificates: run only `CMD`")
	f.Var(&sources, "source-address", "user certificates: accept only from these `CIDR`s (repeatable, or comma-separated)")
	noPort := f.Bool("no-port-forwarding", false, "user certificates: no port forwarding")
	noAgent := f.Bool("no-agent-forwarding", false, "user certificates: no agent forwarding")
	noX11 := f.Bool("no-x11-forwarding", false, "user certificates: no X11 forwarding")
	noPTY := f.Bool("no-pty", false, "user certificates: no terminal")
	noRC := f.Bool("no-user-rc", false, "user certificates: do not run ~/.ssh/rc")
	asJSON := f.Bool("json", false, "print JSON")
	rest, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return badUsage("give the public key file (e.g. /etc/ssh/ssh_host_ed25519_key.pub)")
	}
	if *authority == "" {
		return badUsage("--authority NAME is required")
	}
	if *host == *user {
		return badUsage("give exactly one of --host and --user")
	}
	raw, err := os.ReadFile(rest[0])
	if err != nil {
		return errs.Wrap(errs.NotFound, err, "reading the public key")
	}
	pub, err := sshca.ParsePublicKey(raw)
	if err != nil {
		return err
	}
	req := sshca.Request{
		Authority: *authority, PublicKey: pub, Type: store.SSHUserCert, Principals: principals, KeyID: *keyID, Actor: "cli",
		Options: sshca.CertOptions{ForceCommand: *force, SourceAddresses: sources, NoPortForwarding: *noPort,
			NoAgentForwarding: *noAgent, NoX11Forwarding: *noX11, NoPTY: *noPTY, NoUserRC: *noRC},
	}
	if *host {
		req.Type = store.SSHHostCert
	}
	if *validity != "" {
		if req.Validity, err = config.ParseDuration(*validity); err != nil {
			return err
		}
	}
	h, err := openHome(e, f, u.unlock())
	if err != nil {
		return err
	}
	defer h.Close()
	iss, err := h.SSH.Issue(e.ctx, req)
	if err != nil {
		return err
	}
	out := certFileName(rest[0])
	if err := os.WriteFile(out, iss.Line(), 0o644); err != nil {
		return errs.Wrap(errs.Unavailable, err, "SSH certificate %d was issued and recorded, but writing it failed", iss.Serial)
	}
	if *asJSON {
		return writeJSON(e.stdout, map[string]any{"serial": iss.Serial, "file": out, "key_id": iss.Cert.KeyId,
			"principals": iss.Cert.ValidPrincipals, "certificate": strings.TrimSpace(string(iss.Line()))})
	}
	fmt.Fprint(e.stdout, sshca.Inspect(out, iss.Cert))
	return nil
}

func cmdSSHTrust(e *env, args []string) error {
	f := newFlags(e, "ssh trust")
	authority := f.String("authority", "", "SSH authority `NAME`")
	pattern := f.String("pattern", "", "known_hosts host `PATTERN` list for a host authority: host names or [host]:port, comma-separated, with * ? and ! (default: its principal policy)")
	if err := f.parseNone(args); err != nil {
		return err
	}
	if *authority == "" {
		return badUsage("--authority NAME is required")
	}
	h, err := openHomeToRead(e, f)
	if err != nil {
		return err
	}
	defer h.Close()
	lines, err := h.SSH.Trust(e.ctx, *authority, *pattern)
	if err != nil {
		return err
	}
	fmt.Fprint(e.stdout, lines)
	return nil
}

func cmdSSHKRL(e *env, args []string) error {
	f := newFlags(e, "ssh krl")
	authority := f.String("authority", "", "SSH authority `NAME`")
	out := f.String("out", "", "write the KRL to `FILE` (default: standard output)")
	if err := f.parseNone(args); err != nil {
		return err
	}
	if *authority == "" {
		return badUsage("--authority NAME is required")
	}
	h, err := openHome(e, f, unlockNone)
	if err != nil {
		return err
	}
	defer h.Close()
	krl, err := h.SSH.KRL(e.ctx, *authority)
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = e.stdout.Write(krl)
		return err
	}
	if err := os.WriteFile(*out, krl, 0o644); err != nil {
		return errs.Wrap(errs.Unavailable, err, "writing the KRL")
	}
	return nil
}

func cmdSSHRevoke(e *env, args []string) error {
	f := newFlags(e, "ssh revoke")
	authority := f.String("authority", "", "SSH authority `NAME`")
	serial := f.String("serial", "", "revoke the certificate with this decimal `SERIAL`")
	keyID := f.String("key-id", "", "revoke every certificate with this key `ID`")
	caKey := f.String("ca-key", "", "revoke the CA key with this `FINGERPRINT` (SHA256:...) and so all its certificates")
	if err := f.parseNone(args); err != nil {
		return err
	}
	n := 0
	for _, s := range []string{*serial, *keyID, *caKey} {
		if s != "" {
			n++
		}
	}
	if *authority == "" || n != 1 {
		return badUsage("give --authority NAME and exactly one of --serial, --key-id and --ca-key")
	}
	h, err := openHome(e, f, unlockNone)
	if err != nil {
		return err
	}
	defer h.Close()
	switch {
	case *serial != "":
		s, err := strconv.ParseUint(*serial, 10, 64)
		if err != nil {
			return errs.New(errs.Malformed, "serial %q: SSH serials are decimal numbers", *serial)
		}
		if err := h.SSH.Revoke(e.ctx, *authority, s, "cli"); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "revoked SSH certificate %d\n", s)
	case *keyID != "":
		count, err := h.SSH.RevokeKeyID(e.ctx, *authority, *keyID, "cli")
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "revoked key ID %q (%d certificates)\n", *keyID, count)
	default:
		k, err := h.SSH.SetKeyState(e.ctx, *authority, *caKey, store.SSHKeyRevoked, "cli")
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "revoked CA key %s of %q\n", k.Fingerprint, *authority)
	}
	fmt.Fprintf(e.stdout, "publish the new KRL: signet ssh krl --authority %s --out FILE\n", *authority)
	return nil
}

func cmdSSHInspect(e *env, args []string) error {
	f := newFlags(e, "ssh inspect")
	rest, err := f.parse(args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return badUsage("give the certificate file")
	}
	raw, err := os.ReadFile(rest[0])
	if err != nil {
		return errs.Wrap(errs.NotFound, err, "reading the certificate")
	}
	cert, err := sshca.ParseCertificate(raw)
	if err != nil {
		return err
	}
	fmt.Fprint(e.stdout, sshca.Inspect(rest[0], cert))
	return nil
}

func cmdSSHList(e *env, args []string) error {
	f := newFlags(e, "ssh list")
	authority := f.String("authority", "", "only this authority's `NAME`")
	keyID := f.String("key-id", "", "only certificates with this key `ID`")
	asJSON := f.Bool("json", false, "print JSON")
	if err := f.parseNone(args); err != nil {
		return err
	}
	h, err := openHomeToRead(e, f)
	if err != nil {
		return err
	}
	defer h.Close()
	list, err := h.Store.SSHCertificates(e.ctx, store.SSHFilter{Authority: *authority, KeyID: *keyID})
	if err != nil {
		return err
	}
	type out struct {
		Serial      uint64    `json:"serial"`
		Authority   string    `json:"authority"`
		Type        string    `json:"type"`
		KeyID       string    `json:"key_id"`
		Principals  []string  `json:"principals"`
		ValidBefore time.Time `json:"valid_before"`
		Status      string    `json:"status"`
		CAKey       string    `json:"ca_key"`
	}
	rows := make([]out, len(list))
	for i, c := range list {
		rows[i] = out{c.Serial, c.Authority, string(c.Type), c.KeyID, c.Principals, c.ValidBefore, string(c.Status), c.CAFingerprint}
	}
	if *asJSON {
		return writeJSON(e.stdout, rows)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIAL\tAUTHORITY\tTYPE\tKEY ID\tPRINCIPALS\tVALID BEFORE\tSTATUS")
	for _, r := range rows {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Serial, r.Authority, r.Type, r.KeyID, strings.Join(r.Principals, ","),
			r.ValidBefore.Format(time.RFC3339), r.Status)
	}
	return tw.Flush()
}

func cmdSSHKeyAdd(e *env, args []string) error {
	f := newFlags(e, "ssh key add")
	var u unlockFlags
	u.register(f)
	authority := f.String("authority", "", "SSH authority `NAME`")
	var kf keyFlags
	kf.register(f, "generate the key beside the root key (same token, or an encrypted file)")
	activate := f.Bool("activate", false, "make the new key the signer at once (else it is only trusted until 'ssh key activate')")
	asJSON := f.Bool("json", false, "print JSON")
	if err := f.parseNone(args); err != nil {
		return err
	}
	if *authority == "" {
		return badUsage("--authority NAME is required")
	}
	if err := kf.check(); err != nil {
		return err
	}
	h, err := openHome(e, f, u.unlock())
	if err != nil {
		return err
	}
	defer h.Close()
	uri, err := kf.uri(e.ctx, h, func() (string, error) {
		keys, err := h.SSH.Keys(e.ctx, *authority)
		return fmt.Sprintf("%s-%d", *authority, len(keys)+1), err
	})
	if err != nil {
		return err
	}
	k, err := h.SSH.AddKey(e.ctx, *authority, uri, *activate, "cli")
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, keyJSON(k))
	}
	fmt.Fprintf(e.stdout, "added %s key %s (%s) to %q\n", k.State, k.Fingerprint, k.KeyURI, *authority)
	fmt.Fprintf(e.stdout, "install the new trust lines: signet ssh trust --authority %s\n", *authority)
	return nil
}

func cmdSSHKeyActivate(e *env, args []string) error {
	return sshKeyState(e, "ssh key activate", args, store.SSHKeyActive)
}

func cmdSSHKeyRetire(e *env, args []string) error {
	return sshKeyState(e, "ssh key retire", args, store.SSHKeyRetired)
}

func sshKeyState(e *env, name string, args []string, state store.SSHKeyState) error {
	f := newFlags(e, name)
	var u unlockFlags
	u.register(f)
	authority := f.String("authority", "", "SSH authority `NAME`")
	rest, err := f.parse(args)
	if err != nil {
		return err
	}
	if *authority == "" || len(rest) != 1 {
		return badUsage("give --authority NAME and the key's FINGERPRINT (SHA256:...)")
	}
	h, err := openHome(e, f, u.unlock())
	if err != nil {
		return err
	}
	defer h.Close()
	k, err := h.SSH.SetKeyState(e.ctx, *authority, rest[0], state, "cli")
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "key %s of %q is %s\n", k.Fingerprint, *authority, k.State)
	if state == store.SSHKeyRetired {
		fmt.Fprintf(e.stdout, "install the new trust lines: signet ssh trust --authority %s\n", *authority)
	}
	return nil
}

type sshKeyOut struct {
	Authority   string    `json:"authority"`
	Fingerprint string    `json:"fingerprint"`
	State       string    `json:"state"`
	Key         string    `json:"key"`
	PublicKey   string    `json:"public_key"`
	Created     time.Time `json:"created"`
}

func keyJSON(k store.SSHKey) sshKeyOut {
	return sshKeyOut{k.Authority, k.Fingerprint, string(k.State), kms.Redact(k.KeyURI), k.PublicKey, k.CreatedAt}
}

func cmdSSHKeyList(e *env, args []string) error {
	f := newFlags(e, "ssh key list")
	authority := f.String("authority", "", "only this SSH authority's `NAME`")
	asJSON := f.Bool("json", false, "print JSON")
	if err := f.parseNone(args); err != nil {
		return err
	}
	h, err := openHomeToRead(e, f)
	if err != nil {
		return err
	}
	defer h.Close()
	names := []string{*authority}
	if *authority == "" {
		names = nil
		all, err := h.Store.Authorities(e.ctx)
		if err != nil {
			return err
		}
		for _, a := range all {
			if strings.HasPrefix(a.Purpose, "ssh-") {
				names = append(names, a.Name)
			}
		}
	}
	out := []sshKeyOut{}
	for _, n := range names {
		keys, err := h.SSH.Keys(e.ctx, n)
		if err != nil {
			return err
		}
		for _, k := range keys {
			out = append(out, keyJSON(k))
		}
	}
	if *asJSON {
		return writeJSON(e.stdout, out)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "AUTHORITY\tFINGERPRINT\tSTATE\tKEY\tCREATED")
	for _, k := range out {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.Authority, k.Fingerprint, k.State, k.Key, k.Created.Format("2006-01-02"))
	}
	return tw.Flush()
}
