package sshclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"signet/internal/config"
	"signet/internal/errs"
	"signet/internal/sshca"
)

// maxBackoff caps the wait after failed renewals.
const maxBackoff = 6 * time.Hour

// Host keeps one SSH host certificate renewed for signet agent: at two
// thirds of its lifetime it renews it with RenewHost, replaces the file
// atomically and runs Reload. A failure leaves the file as it was and is
// retried after a doubling wait.
type Host struct {
	Label    string
	Server   string
	Bundle   []byte // PEM roots of the server's HTTPS certificate; nil: the system's
	HostKey  string // file
	CertFile string
	Reload   []string

	failures int
	retryAt  time.Time
}

// Name names the certificate in the agent's output.
func (h *Host) Name() string { return h.Label }

// Renew renews the certificate if it is due (not with dryRun); force
// ignores the wait after a failure. It returns when to look again.
func (h *Host) Renew(ctx context.Context, now time.Time, force, dryRun bool, out io.Writer) (time.Time, error) {
	cert, err := readCert(h.CertFile)
	if err != nil {
		return now.Add(time.Hour), err
	}
	due := renewAt(cert)
	switch {
	case now.Before(due):
		fmt.Fprintf(out, "%s: SSH host certificate %d valid until %s, renewal due %s\n", h.Label, cert.Serial, until(cert).Format(time.RFC3339), due.Format(time.RFC3339))
		return due, nil
	case !force && now.Before(h.retryAt):
		return h.retryAt, nil
	case dryRun:
		fmt.Fprintf(out, "%s: SSH host certificate %d is due for renewal (dry run: not renewed)\n", h.Label, cert.Serial)
		return due, nil
	}
	renewed, err := h.renew(ctx, cert)
	if err != nil {
		h.failures++
		h.retryAt = now.Add(min(time.Minute<<min(h.failures-1, 16), maxBackoff))
		return h.retryAt, errs.Wrap(errs.KindOf(err), err, "renewing SSH host certificate %d (%s stays; next try %s)", cert.Serial, h.CertFile, h.retryAt.UTC().Format(time.RFC3339))
	}
	h.failures, h.retryAt = 0, time.Time{}
	fmt.Fprintf(out, "%s: SSH host certificate renewed: serial %d valid until %s\n", h.Label, renewed.Serial, until(renewed).Format(time.RFC3339))
	if len(h.Reload) > 0 {
		cmd := exec.CommandContext(ctx, h.Reload[0], h.Reload[1:]...)
		if b, err := cmd.CombinedOutput(); err != nil {
			return renewAt(renewed), errs.New(errs.Unavailable, "%s: the reload command %s failed (%v): %s; the renewed certificate is in %s",
				h.Label, strconv.Quote(strings.Join(h.Reload, " ")), err, strings.TrimSpace(string(b)), h.CertFile)
		}
	}
	return renewAt(renewed), nil
}

func (h *Host) renew(ctx context.Context, cert *ssh.Certificate) (*ssh.Certificate, error) {
	key, err := ReadHostKey(h.HostKey)
	if err != nil {
		return nil, err
	}
	renewed, err := RenewHost(ctx, h.Server, h.Bundle, key, cert)
	if err != nil {
		return nil, err
	}
	line := ssh.MarshalAuthorizedKey(renewed)
	if err := config.ReplaceFile(h.CertFile, 0o644, func(w io.Writer) error { _, err := w.Write(line); return err }); err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "SSH certificate %d was issued, but writing %s failed; the old certificate is in place", renewed.Serial, h.CertFile)
	}
	return renewed, nil
}

// ReadHostKey reads a host's private key as sshd does: an OpenSSH file,
// unencrypted.
func ReadHostKey(path string) (ssh.Signer, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, errs.Wrap(errs.NotFound, err, "reading the host key")
	}
	key, err := ssh.ParsePrivateKey(pem)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		return nil, errs.New(errs.Malformed, "the host key %s is encrypted; give the host key as sshd reads it, unencrypted", path)
	}
	if err != nil {
		return nil, errs.Wrap(errs.Malformed, err, "the host key %s is not an OpenSSH private key", path)
	}
	return key, nil
}

func readCert(path string) (*ssh.Certificate, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, errs.Wrap(errs.NotFound, err, "reading the SSH host certificate")
	}
	return sshca.ParseCertificate(raw)
}

// renewAt is two thirds into the certificate's lifetime.
func renewAt(c *ssh.Certificate) time.Time {
	after := time.Unix(int64(min(c.ValidAfter, 1<<62)), 0)
	return after.Add(until(c).Sub(after) * 2 / 3)
}

func until(c *ssh.Certificate) time.Time { return time.Unix(int64(min(c.ValidBefore, 1<<62)), 0).UTC() }
