package main

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/crypto/ssh"

	"signet/internal/config"
	"signet/internal/errs"
	"signet/internal/sshca"
	"signet/internal/sshclient"
)

// cmdSSHRenewHost: a host renews its own certificate from the running
// server, proving it with its host key; no home and no admin credential.
func cmdSSHRenewHost(e *env, args []string) error {
	f := newFlags(e, "ssh renew-host")
	server := f.String("server", "", "signet server `URL` (https://host:port)")
	keyFile := f.String("host-key", "", "the host's private key `FILE` (OpenSSH format, unencrypted, as sshd reads it)")
	certFile := f.String("cert", "", "the host's current certificate `FILE` (KEY-cert.pub)")
	caBundle := f.String("ca-bundle", "", "`PEM` file of the roots the server's HTTPS certificate chains to (default: the system's)")
	out := f.String("out", "", "write the new certificate to `FILE`, replacing it atomically (default: --cert)")
	if err := f.parseNone(args); err != nil {
		return err
	}
	if *server == "" || *keyFile == "" || *certFile == "" {
		return badUsage("--server URL, --host-key FILE and --cert FILE are required")
	}
	if *out == "" {
		*out = *certFile
	}
	raw, err := os.ReadFile(*certFile)
	if err != nil {
		return errs.Wrap(errs.NotFound, err, "reading --cert")
	}
	cert, err := sshca.ParseCertificate(raw)
	if err != nil {
		return err
	}
	host, err := sshclient.ReadHostKey(*keyFile)
	if err != nil {
		return err
	}
	var bundle []byte
	if *caBundle != "" {
		if bundle, err = os.ReadFile(*caBundle); err != nil {
			return errs.Wrap(errs.NotFound, err, "reading --ca-bundle")
		}
	}
	renewed, err := sshclient.RenewHost(e.ctx, *server, bundle, host, cert)
	if err != nil {
		return err
	}
	line := ssh.MarshalAuthorizedKey(renewed)
	if err := config.ReplaceFile(*out, 0o644, func(w io.Writer) error { _, err := w.Write(line); return err }); err != nil {
		return errs.Wrap(errs.Unavailable, err, "SSH certificate %d was issued, but writing %s failed; the old certificate is in place", renewed.Serial, *out)
	}
	fmt.Fprint(e.stdout, sshca.Inspect(*out, renewed))
	return nil
}
