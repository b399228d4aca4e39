package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"signet/internal/kms/kmstest"
)

// startKnot runs Knot DNS on loopback, authoritative for signet.test
// (every name 127.0.0.1), taking DNS UPDATEs signed with a TSIG key made
// here. It returns its address and the key's base64 secret.
func startKnot(t *testing.T) (addr, secret string) {
	knotd := kmstest.RequireTool(t, "knotd")
	dir := t.TempDir()
	raw := make([]byte, 32)
	rand.Read(raw)
	secret = base64.StdEncoding.EncodeToString(raw)
	addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	host, port := "127.0.0.1", addr[len("127.0.0.1:"):]
	conf := fmt.Sprintf(`server:
    rundir: %[1]s
    listen: %[2]s@%[3]s
database:
    storage: %[1]s
key:
  - id: acme.
    algorithm: hmac-sha256
    secret: %[4]s
acl:
  - id: update
    key: acme.
    action: update
zone:
  - domain: signet.test
    storage: %[1]s
    file: signet.test.zone
    acl: update
log:
  - target: stderr
    any: info
`, dir, host, port, secret)
	zone := "$ORIGIN signet.test.\n$TTL 60\n@ SOA ns.signet.test. admin.signet.test. 1 3600 600 86400 60\n@ NS ns.signet.test.\nns A 127.0.0.1\n* A 127.0.0.1\n"
	os.WriteFile(filepath.Join(dir, "knot.conf"), []byte(conf), 0o600)
	os.WriteFile(filepath.Join(dir, "signet.test.zone"), []byte(zone), 0o600)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, knotd, "-c", filepath.Join(dir, "knot.conf"))
	var logs lockedBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	m := new(dns.Msg)
	m.SetQuestion("signet.test.", dns.TypeSOA)
	for i := 0; ; i++ {
		if r, _, err := (&dns.Client{Timeout: time.Second}).Exchange(m, addr); err == nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) == 1 {
			break
		}
		if i == 100 {
			t.Fatalf("knotd did not serve signet.test:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return addr, secret
}

// TestACMEClientRFC2136: dns-01 through RFC 2136 UPDATEs signed with TSIG
// against Knot DNS started here, with signet's ACME server resolving
// through that Knot; the account and certificate keys on tokens. The
// record is removed afterwards; a wrong TSIG secret is refused by Knot and
// reported.
func TestACMEClientRFC2136(t *testing.T) {
	work, module, _, _, _ := clientWork(t)
	knot, secret := startKnot(t)
	t.Setenv("SIGNET_TEST_TSIG", secret)
	t.Setenv("SIGNET_TEST_BADTSIG", base64.StdEncoding.EncodeToString([]byte("not the key at all, not the key")))
	dir, directory, _, _ := acmeServePorts(t, knot)
	tokenFlags := []string{"--module", module, "--pin", "env:SIGNET_TEST_PIN"}
	account := "pkcs11:token=acct;object=account"
	signetCLI(t, append([]string{"key", "generate", "--uri", account, "--type", "ecdsa-p256"}, tokenFlags...)...)
	args := func(name, secret string) []string {
		return append([]string{"acme", "certonly", "--server", directory, "--ca-bundle", filepath.Join(dir, "root.pem"), "--account-key", account,
			"--key-on-token", "pkcs11:token=certs;object=" + name, "--dns", name + ".signet.test", "--out", filepath.Join(work, name),
			"--dns-01", "rfc2136", "--dns-server", knot, "--dns-zone", "signet.test", "--tsig-name", "acme", "--tsig-algorithm", "hmac-sha256",
			"--tsig-secret", "env:" + secret}, tokenFlags...)
	}
	var o, e lockedBuffer
	if code := run(t.Context(), args("bad", "SIGNET_TEST_BADTSIG"), nil, &o, &e); code == 0 {
		t.Fatal("a wrong TSIG secret got a certificate")
	} else if want := "DNS UPDATE"; !strings.Contains(e.String(), want) {
		t.Fatalf("wrong TSIG secret: %s", e.String())
	}
	signetCLI(t, args("rfc", "SIGNET_TEST_TSIG")...)
	opensslVerify(t, dir, filepath.Join(work, "rfc", "cert.pem"), filepath.Join(work, "rfc", "chain.pem"))
	m := new(dns.Msg)
	m.SetQuestion("_acme-challenge.rfc.signet.test.", dns.TypeTXT)
	if r, _, err := (&dns.Client{Timeout: 5 * time.Second}).Exchange(m, knot); err != nil || len(r.Answer) != 0 {
		t.Fatalf("the challenge record was not removed: %v %v", err, r)
	}
}
