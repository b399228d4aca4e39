package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// libvirtdPath finds libvirtd, which a non-root PATH may lack (/usr/sbin).
func libvirtdPath() string {
	if p, err := exec.LookPath("libvirtd"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/libvirtd"); err == nil {
		return "/usr/sbin/libvirtd"
	}
	return ""
}

// haveLibvirt answers [libvirt]: libvirtd and virsh are installed and we
// may make a mount namespace (root), or SIGNET_REQUIRE_TOOLS=1 (then the
// libvirtd command fails rather than the script skipping).
func haveLibvirt() bool {
	if os.Getenv("SIGNET_REQUIRE_TOOLS") == "1" {
		return true
	}
	_, virsh := exec.LookPath("virsh")
	_, unshare := exec.LookPath("unshare")
	return libvirtdPath() != "" && virsh == nil && unshare == nil && os.Geteuid() == 0
}

// cmdLibvirtd starts Debian's libvirtd until the script ends: its TLS
// listener only, on 127.0.0.1:PORT, with the TLS files given, and no
// hypervisor driver (virsh reaches the built-in test driver through
// test+tls://). It runs in a private mount namespace with tmpfs over /run
// and /var, where libvirtd keeps its state, and its UNIX sockets in
// $WORK/libvirtd, so the machine is left as it was; it reads no /etc/pki
// path, for the configuration names its TLS files. It logs to
// $WORK/libvirtd/log.
func cmdLibvirtd(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 4 {
		ts.Fatalf("usage: libvirtd PORT CA_FILE CERT_FILE KEY_FILE")
	}
	daemon := libvirtdPath()
	if daemon == "" {
		ts.Fatalf("libvirtd not installed (Debian package libvirt-daemon)")
	}
	dir := ts.MkAbs("libvirtd")
	for _, d := range []string{dir, filepath.Join(dir, "run"), filepath.Join(dir, "drivers")} {
		ts.Check(os.MkdirAll(d, 0o700))
	}
	conf := filepath.Join(dir, "libvirtd.conf")
	ts.Check(os.WriteFile(conf, fmt.Appendf(nil, `listen_tls = 1
listen_tcp = 0
listen_addr = "127.0.0.1"
tls_port = %q
auth_tls = "none"
ca_file = %q
cert_file = %q
key_file = %q
unix_sock_dir = %q
log_outputs = "3:stderr"
`, args[0], ts.MkAbs(args[1]), ts.MkAbs(args[2]), ts.MkAbs(args[3]), filepath.Join(dir, "run")), 0o600))
	log, err := os.Create(filepath.Join(dir, "log"))
	ts.Check(err)
	const inNamespace = `mount -t tmpfs signet-test /run && mount -t tmpfs signet-test /var && exec "$@"`
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", inNamespace, "sh",
		daemon, "--listen", "--config", conf, "--pid-file", filepath.Join(dir, "run", "pid"))
	// An empty driver directory: no QEMU, network or storage driver loads.
	cmd.Env = append(os.Environ(), "LIBVIRT_DRIVER_DIR="+filepath.Join(dir, "drivers"))
	cmd.Stdout, cmd.Stderr = log, log
	ts.Check(cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); log.Close() }()
	ts.Defer(func() {
		cmd.Process.Kill()
		<-exited
	})
	addr := net.JoinHostPort("127.0.0.1", args[0])
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case err := <-exited:
			exited <- err
			out, _ := os.ReadFile(filepath.Join(dir, "log"))
			ts.Fatalf("libvirtd exited (%v):\n%s", err, out)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
	}
	ts.Fatalf("libvirtd did not listen on %s within 30s", addr)
}
