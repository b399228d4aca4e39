// Command acmeload measures signet's ACME server: it starts `signet serve`
// on a fresh home (durable SQLite) on loopback, runs C clients doing
// complete issuances with internal/acme/load, and reports certificates/s,
// latency, the server's CPU per certificate and its memory, next to the
// bare cryptography ceiling measured in the same run.
//
//	go build -o /tmp/signet ./cmd/signet
//	go run ./cmd/acmeload -signet /tmp/signet -clients 8 -count 5000
package main

import (
	"context"
	"crypto/x509"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"crypto/tls"

	"signet/internal/acme/load"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "acmeload:", err)
		os.Exit(1)
	}
}

func run() error {
	bin := flag.String("signet", "", "the signet binary to run (go build -o /tmp/signet ./cmd/signet)")
	clients := flag.Int("clients", 8, "concurrent clients, each with its own account")
	count := flag.Int("count", 5000, "issuances in total")
	duration := flag.Duration("duration", 2*time.Minute, "stop after this long in any case")
	flag.Parse()
	if *bin == "" {
		return fmt.Errorf("give -signet PATH")
	}
	dir, err := os.MkdirTemp("", "acmeload")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	resp, err := load.StartResponders()
	if err != nil {
		return err
	}
	defer resp.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	ln.Close()
	_, httpPort, _ := net.SplitHostPort(resp.HTTPAddr)
	ctx, cancel := context.WithTimeout(context.Background(), *duration+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, *bin, "serve", "--home", filepath.Join(dir, "home"), "--listen", addr,
		"--acme-resolver", resp.DNSAddr, "--acme-http-port", httpPort, "--acme-tls-port", "1")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	roots, err := waitUp(filepath.Join(dir, "home", "root.pem"), addr)
	if err != nil {
		return err
	}
	cpu0 := cpuTime(cmd.Process.Pid)
	res, err := load.Run(context.Background(), load.Config{
		Directory: "https://" + addr + "/acme/default/directory", Roots: roots,
		Clients: *clients, Count: *count, Duration: *duration,
	}, resp)
	if err != nil {
		return err
	}
	cpu := cpuTime(cmd.Process.Pid) - cpu0
	rss, hwm := memory(cmd.Process.Pid)
	ceiling := load.Ceiling(300)
	ceilingRate := float64(runtime.NumCPU()) / ceiling.Seconds()
	fmt.Printf("clients %d, issued %d, failed %d in %s (durable SQLite, loopback, %d CPUs)\n",
		*clients, res.Issued, res.Failed, res.Elapsed.Round(time.Millisecond), runtime.NumCPU())
	if res.FirstErr != nil {
		fmt.Printf("first error: %v\n", res.FirstErr)
	}
	fmt.Printf("certificates/s   %.0f\n", res.PerSecond())
	fmt.Printf("latency p50/p99  %.1f ms / %.1f ms (max %.1f ms)\n", ms(res.P50), ms(res.P99), ms(res.Max))
	if res.Issued > 0 {
		fmt.Printf("server CPU/cert  %.2f ms\n", ms(cpu)/float64(res.Issued))
	}
	fmt.Printf("server RSS       %.1f MiB now, %.1f MiB peak\n", float64(rss)/1024, float64(hwm)/1024)
	fmt.Printf("crypto ceiling   %.3f ms/issuance on one core = %.0f/s on %d cores; achieved %.0f%%\n",
		ms(ceiling), ceilingRate, runtime.NumCPU(), 100*res.PerSecond()/ceilingRate)
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func waitUp(rootFile, addr string) (*x509.CertPool, error) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if pemBytes, err := os.ReadFile(rootFile); err == nil {
			roots := x509.NewCertPool()
			roots.AppendCertsFromPEM(pemBytes)
			c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
			if r, err := c.Get("https://" + addr + "/health"); err == nil {
				r.Body.Close()
				return roots, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, fmt.Errorf("signet serve did not come up on %s", addr)
}

// cpuTime is a process's user+system CPU time from /proc (Linux).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// memory is a process's resident set and its peak, in KiB.
func memory(pid int) (rss, hwm int64) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 {
			switch f[0] {
			case "VmRSS:":
				rss, _ = strconv.ParseInt(f[1], 10, 64)
			case "VmHWM:":
				hwm, _ = strconv.ParseInt(f[1], 10, 64)
			}
		}
	}
	return rss, hwm
}
