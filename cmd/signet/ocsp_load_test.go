package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// BenchmarkServeOCSPPadded sends b.N distinct OCSP requests for one
// certificate (each with its own nonce, padded to about 1 KiB) to a running
// `signet serve`, and reports the server's resident memory after them
// (rss-MiB) and its peak (peak-MiB). It is a load script, not a test:
//
//	go test ./cmd/signet -run '^$' -bench ServeOCSPPadded -benchtime 100000x
//
// Before OCSP's request cache was keyed by what a request asks, 100k such
// requests took serve from 40 to 221 MiB for good; the target is 80 MiB.
func BenchmarkServeOCSPPadded(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "home")
	cli := func(args ...string) {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), append(args, "--home", dir), nil, &out, &errOut); code != 0 {
			b.Fatalf("signet %s: %s", strings.Join(args, " "), errOut.String())
		}
	}
	b.Setenv("KEYPASS", "ocsp load key passphrase")
	cli("init")
	certFile := filepath.Join(b.TempDir(), "leaf.pem")
	cli("issue", "--new-key", filepath.Join(b.TempDir(), "leaf.key"), "--key-passphrase", "env:KEYPASS",
		"--dns", "load.example.org", "--out", certFile)
	var chain []*x509.Certificate
	rest, _ := os.ReadFile(certFile)
	for p, r := pem.Decode(rest); p != nil; p, r = pem.Decode(r) {
		c, err := x509.ParseCertificate(p.Bytes)
		if err != nil {
			b.Fatal(err)
		}
		chain = append(chain, c)
	}
	if len(chain) < 2 {
		b.Fatalf("%s holds no chain", certFile)
	}
	leaf, issuer := chain[0], chain[1]
	canonical, err := ocsp.CreateRequest(leaf, issuer, nil)
	if err != nil {
		b.Fatal(err)
	}
	var parsed struct{ TBS struct{ List asn1.RawValue } }
	if _, err := asn1.Unmarshal(canonical, &parsed); err != nil {
		b.Fatal(err)
	}

	// The test binary is signet when called by that name (testscript.Main).
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(b.TempDir(), "signet")
	if err := os.Symlink(exe, bin); err != nil {
		b.Fatal(err)
	}
	port := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	httpAddr := port()
	serve := exec.Command(bin, "serve", "--home", dir, "--listen", port(), "--http-listen", httpAddr)
	var stderr lockedBuffer
	serve.Stdout, serve.Stderr = io.Discard, &stderr
	if err := serve.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		serve.Process.Signal(os.Interrupt)
		serve.Wait()
	}()

	url := "http://" + httpAddr + "/ocsp/default"
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	ask := func(body []byte) error {
		resp, err := client.Post(url, "application/ocsp-request", bytes.NewReader(body))
		if err != nil {
			return err
		}
		der, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		r, err := ocsp.ParseResponseForCert(der, leaf, issuer)
		if err != nil {
			return err
		}
		if r.Status != ocsp.Good {
			return fmt.Errorf("status %d, want good", r.Status)
		}
		return nil
	}
	for i := 0; ask(canonical) != nil; i++ {
		if i == 300 {
			b.Fatalf("serve never answered OCSP: %s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	startRSS := memory(b, serve.Process.Pid, "VmRSS")

	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Pointer[error]
	for range 8 {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) || failed.Load() != nil {
					return
				}
				if err := ask(paddedRequest(parsed.TBS.List, i)); err != nil {
					failed.Store(&err)
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatalf("a padded request: %v", *err)
	}
	b.ReportMetric(startRSS, "start-MiB")
	b.ReportMetric(memory(b, serve.Process.Pid, "VmRSS"), "rss-MiB")
	b.ReportMetric(memory(b, serve.Process.Pid, "VmHWM"), "peak-MiB")
}

// paddedRequest is a request for the CertID in list with a nonce
// extension of 900 bytes that starts with i: a distinct request of about
// 1 KiB for the same certificate.
func paddedRequest(list asn1.RawValue, i int64) []byte {
	nonce := make([]byte, 900)
	binary.BigEndian.PutUint64(nonce, uint64(i))
	value, _ := asn1.Marshal(nonce)
	var out struct {
		TBS struct {
			List asn1.RawValue
			Ext  []pkix.Extension `asn1:"explicit,tag:2"`
		}
	}
	out.TBS.List = list
	out.TBS.Ext = []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 2}, Value: value}}
	der, _ := asn1.Marshal(out) // a RawValue and bytes: nothing to fail on
	return der
}

// memory reads one of a process's /proc/PID/status sizes, in MiB.
func memory(b *testing.B, pid int, field string) float64 {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				b.Fatal(err)
			}
			return float64(kb) / 1024
		}
	}
	b.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
