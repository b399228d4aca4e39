// Package sshtest runs the real OpenSSH programs for tests: an sshd on
// loopback with its own configuration, and an ssh client that trusts only
// the known_hosts file it is given.
package sshtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"testing"
	"time"

	"signet/internal/kms/kmstest"
)

// OpenSSH names the programs a test runs.
type OpenSSH struct {
	SSHD, SSH string // the programs
	User      string // who logs in: the user running the test
}

// Require finds sshd and ssh, skipping the test where they are missing.
func Require(t *testing.T) OpenSSH {
	t.Helper()
	o := OpenSSH{SSH: kmstest.RequireTool(t, "ssh")}
	if _, err := exec.LookPath("sshd"); err != nil {
		if _, err := os.Stat("/usr/sbin/sshd"); err == nil {
			o.SSHD = "/usr/sbin/sshd" // not on a non-root PATH
		}
	}
	if o.SSHD == "" {
		o.SSHD = kmstest.RequireTool(t, "sshd")
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	o.User = u.Username
	if os.Geteuid() == 0 {
		// sshd's privilege separation directory, which a container may lack.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return o
}

// Files are what an sshd serves and checks.
type Files struct {
	HostKey, HostCert, UserCAs, KRL string
}

// SSHD is a running sshd.
type SSHD struct {
	Port int
	log  string
}

// Since returns what sshd logged since the last call with mark.
func (d *SSHD) Since(t *testing.T, mark *int) string {
	t.Helper()
	b, _ := os.ReadFile(d.log)
	s := string(b[min(*mark, len(b)):])
	*mark = len(b)
	return s
}

// FreePort is a loopback TCP port free a moment ago.
func FreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// StartSSHD runs sshd in the foreground until the test ends.
func (o OpenSSH) StartSSHD(t *testing.T, name string, f Files) *SSHD {
	t.Helper()
	dir := t.TempDir()
	d := &SSHD{Port: FreePort(t), log: filepath.Join(dir, "sshd.log")}
	conf := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
HostCertificate %s
TrustedUserCAKeys %s
RevokedKeys %s
AuthorizedKeysFile none
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
PidFile %s
LogLevel DEBUG2
`, d.Port, f.HostKey, f.HostCert, f.UserCAs, f.KRL, filepath.Join(dir, "sshd.pid"))
	confFile := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(d.log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(o.SSHD, "-D", "-e", "-f", confFile)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(d.log)
			t.Logf("sshd %s log:\n%s", name, b)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", d.Port), time.Second)
		if err == nil {
			c.Close()
			return d
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(d.log)
			t.Fatalf("sshd %s did not listen on %d: %v\n%s", name, d.Port, err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Login runs `ssh ... echo ok` against d as host alias, with the identity
// key (its certificate beside it) and a known_hosts file.
func (o OpenSSH) Login(t *testing.T, d *SSHD, alias, knownHosts, key, cert string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, o.SSH, "-F", "/dev/null",
		"-o", "UserKnownHostsFile="+knownHosts, "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
		"-o", "IdentityAgent=none", "-o", "HostKeyAlias="+alias, "-o", "CertificateFile="+cert,
		"-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", "-i", key,
		"-p", fmt.Sprint(d.Port), o.User+"@127.0.0.1", "echo", "ok")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%w: %s", err, stderr.Bytes())
	}
	return out.String(), err
}
