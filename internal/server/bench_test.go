package server_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"

	"signet/internal/ca"
	"signet/internal/ca/catest"
	"signet/internal/cputime"
	"signet/internal/kms"
	"signet/internal/lint"
	"signet/internal/policy"
	"signet/internal/profile"
	"signet/internal/server"
)

// BenchmarkIssueHTTPS measures direct issuance over HTTPS (POST
// /api/v1/authorities/web/certificates, a DER CSR, the admin token, 8
// clients each on its own keep-alive connection to a real `serve`
// listener) beside ca.Issue called by 8 goroutines with the same parsed
// CSR (direct), ca.ParseCSR and ca.Issue (csr+direct: the CSR's signature
// check is the handler's and not ca.Issue's), and the raw crypto a certificate needs at least (the CSR's
// signature check, one CreateCertificate, the lint pass), in alternating
// rounds of the same run. b.N counts the HTTPS path's certificates; the
// other rounds run with the timer stopped and are reported as metrics:
//
//	go test ./internal/server -run '^$' -bench IssueHTTPS -benchtime 4000x
//
// https/direct is the HTTPS path's throughput over ca.Issue's (issue 21:
// ≥ 80 %), https%ceiling its throughput over the ceiling's.
func BenchmarkIssueHTTPS(b *testing.B) {
	const clients, rounds = 8, 8
	ctx := context.Background()
	f := newFixture(b, kms.ECDSAP256, "file:root.key", "file:web.key")
	root, err := f.ca.CreateRoot(ctx, ca.RootSpec{CommonName: "bench root", KeyURI: "file:root.key"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.ca.CreateAuthority(ctx, ca.AuthoritySpec{Name: "web", Purpose: profile.TLSServer, KeyURI: "file:web.key",
		Policy: policy.Policy{DNS: []string{"example.org"}, IP: []string{"127.0.0.0/8"}}}); err != nil {
		b.Fatal(err)
	}
	srv := server.New(server.Options{CA: f.ca, Store: f.store, AdminToken: []byte("bench-token"), Authority: "web",
		Names: []string{"127.0.0.1"}, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	addr := serveTLS(b, srv)

	pool := x509.NewCertPool()
	rootCert, err := x509.ParseCertificate(root.CertDER)
	if err != nil {
		b.Fatal(err)
	}
	pool.AddCert(rootCert)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"www.example.org"}}, key)
	if err != nil {
		b.Fatal(err)
	}
	csr, err := ca.ParseCSR(csrDER)
	if err != nil {
		b.Fatal(err)
	}
	url := "https://" + addr + "/api/v1/authorities/web/certificates"
	hc := make([]*http.Client, clients)
	for i := range hc {
		hc[i] = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 1}}
	}
	post := func(c *http.Client) error {
		req, _ := http.NewRequest("POST", url, bytes.NewReader(csrDER))
		req.Header.Set("Content-Type", "application/pkcs10")
		req.Header.Set("Authorization", "Bearer bench-token")
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusCreated {
			b.Fatalf("POST: %s %s", resp.Status, body)
		}
		return err
	}
	direct := func(int) error {
		_, err := f.ca.Issue(ctx, ca.Request{Authority: "web", CSR: csr})
		return err
	}
	// withCSR is what a caller holding the CSR's bytes does, as the
	// handler: check the CSR, then ca.Issue.
	withCSR := func(int) error {
		c, err := ca.ParseCSR(csrDER)
		if err != nil {
			return err
		}
		_, err = f.ca.Issue(ctx, ca.Request{Authority: "web", CSR: c})
		return err
	}
	ceiling := catest.NewCeiling(b)
	gate, err := lint.New()
	if err != nil {
		b.Fatal(err)
	}
	crypto := func(int) error {
		if _, err := ca.ParseCSR(csrDER); err != nil {
			return err
		}
		der, err := ceiling.Sign()
		if err != nil {
			return err
		}
		return gate.Check(der)
	}
	// Every client connects once before timing: keep-alive from then on.
	if err := run(clients, clients, func(i int) error { return post(hc[i]) }); err != nil {
		b.Fatal(err)
	}

	var https, issue, parsed, raw measure
	b.ResetTimer()
	for r := range rounds {
		n := b.N/rounds + btoi(r < b.N%rounds)
		https.add(b, true, n, func() error { return run(clients, n, func(i int) error { return post(hc[i]) }) })
		issue.add(b, false, n, func() error { return run(clients, n, direct) })
		parsed.add(b, false, n, func() error { return run(clients, n, withCSR) })
		raw.add(b, false, n, func() error { return run(clients, n, crypto) })
	}
	b.StopTimer()
	b.ReportMetric(https.perSecond(), "https-certs/s")
	b.ReportMetric(issue.perSecond(), "direct-certs/s")
	b.ReportMetric(parsed.perSecond(), "csr+direct-certs/s")
	b.ReportMetric(raw.perSecond(), "ceiling-certs/s")
	b.ReportMetric(100*https.perSecond()/issue.perSecond(), "https/direct%")
	b.ReportMetric(100*https.perSecond()/raw.perSecond(), "https%ceiling")
	b.ReportMetric(https.cpuPerOp(), "https-cpu-µs/op")
	b.ReportMetric(issue.cpuPerOp(), "direct-cpu-µs/op")
	b.ReportMetric(parsed.cpuPerOp(), "csr+direct-cpu-µs/op")
	b.ReportMetric(100*https.perSecond()/parsed.perSecond(), "https/csr+direct%")
	b.ReportMetric(raw.cpuPerOp(), "ceiling-cpu-µs/op")
}

// measure sums the certificates, wall time and process CPU of a kind of
// round.
type measure struct {
	n         int
	wall, cpu time.Duration
}

// add runs one round of n certificates, timed by the benchmark's timer if
// timed, else with it stopped; it ends with a collection inside its own
// time, so that its garbage is not left to the next round.
func (m *measure) add(b *testing.B, timed bool, n int, round func() error) {
	if !timed {
		b.StopTimer()
		defer b.StartTimer()
	}
	start, cpu := time.Now(), cputime.Process()
	if err := round(); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	m.n += n
	m.wall += time.Since(start)
	m.cpu += cputime.Process() - cpu
}

func (m *measure) perSecond() float64 { return float64(m.n) / m.wall.Seconds() }
func (m *measure) cpuPerOp() float64  { return float64(m.cpu.Microseconds()) / float64(m.n) }

// run calls do n times from workers goroutines, do(i) on worker i.
func run(workers, n int, do func(i int) error) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		left = n
		errs []error
	)
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if left == 0 || len(errs) > 0 {
					mu.Unlock()
					return
				}
				left--
				mu.Unlock()
				if err := do(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
