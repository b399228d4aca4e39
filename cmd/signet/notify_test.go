package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeServiceManager runs serve as systemd's Type=notify does: it
// says READY=1 on NOTIFY_SOCKET only when both listeners accept, re-reads
// signet.toml on SIGHUP (a broken file is reported and serving goes on,
// a changed setting is named), and on SIGTERM says STOPPING=1 and exits 0.
func TestServeServiceManager(t *testing.T) {
	tmp := t.TempDir()
	sock := filepath.Join(tmp, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	next := func() string {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(60 * time.Second))
		b := make([]byte, 512)
		n, err := conn.Read(b)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(b[:n])
	}

	dir := filepath.Join(tmp, "home")
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	// As main does: systemd stops the service with SIGTERM.
	ctx, cancel := signal.NotifyContext(context.Background(), stopSignals...)
	defer cancel()
	var stdout, stderr lockedBuffer
	exited := make(chan int, 1)
	go func() {
		exited <- run(ctx, []string{"serve", "--home", dir, "--listen", addr, "--http-listen", httpAddr}, nil, &stdout, &stderr)
	}()
	if got := next(); got != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	for _, a := range []string{addr, httpAddr} {
		c, err := net.Dial("tcp", a)
		if err != nil {
			t.Fatalf("READY=1 sent before %s accepts: %v", a, err)
		}
		c.Close()
	}
	if !strings.Contains(stdout.String(), "signet serving https://"+addr) {
		t.Errorf("READY=1 sent before serve said it is serving:\n%s", stdout.String())
	}

	hangup := func(want string) {
		t.Helper()
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		for range 600 {
			if strings.Contains(stderr.String(), want) {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("after SIGHUP, no %q in the log:\n%s", want, stderr.String())
	}
	conf := filepath.Join(dir, "signet.toml")
	good, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	hangup("signet.toml re-read, no change")
	if err := os.WriteFile(conf, append(good, "oops =\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	hangup("SIGHUP: signet.toml does not load; still serving as started")
	changed := strings.Replace(string(good), "shutdown_timeout = '10s'", "shutdown_timeout = '20s'", 1)
	if changed == string(good) {
		t.Fatalf("no shutdown_timeout line to change in\n%s", good)
	}
	if err := os.WriteFile(conf, []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	hangup("changed=server")
	if c, err := net.Dial("tcp", addr); err != nil {
		t.Fatalf("not serving after SIGHUP: %v", err)
	} else {
		c.Close()
	}

	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "STOPPING=1" {
		t.Errorf("notification on stop %q, want STOPPING=1", got)
	}
	if code := <-exited; code != 0 {
		t.Errorf("serve exited %d: %s", code, stderr.String())
	}
}
