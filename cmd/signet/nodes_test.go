package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
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
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/acme"

	"signet/internal/audit"
	"signet/internal/store"
	"signet/internal/store/postgres"
	"signet/internal/store/postgres/pgtest"
)

// cluster is several `signet serve` processes on one home whose store is a
// private PostgreSQL server, with an http-01 responder and a DNS server
// that answers 127.0.0.1 for every name.
type cluster struct {
	t      *testing.T
	pg     *pgtest.Server
	dbURL  string
	dir    string
	bin    string
	dnsAdr string
	http01 int
	tokens sync.Map // token -> key authorization
	nodes  []*nodeProc
	roots  *x509.CertPool
}

type nodeProc struct {
	addr   string
	cmd    *exec.Cmd
	stderr lockedBuffer
	exited chan struct{}
}

func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	c := &cluster{t: t, pg: pgtest.Start(t)}
	c.dbURL = pgtest.NewDatabase(t, c.pg.URL())
	c.dir = filepath.Join(t.TempDir(), "home")

	// The test binary is signet when called by that name (testscript.Main).
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c.bin = filepath.Join(t.TempDir(), "signet")
	if err := os.Symlink(exe, c.bin); err != nil {
		t.Fatal(err)
	}

	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.http01 = hl.Addr().(*net.TCPAddr).Port
	hs := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ka, ok := c.tokens.Load(strings.TrimPrefix(r.URL.Path, "/.well-known/acme-challenge/")); ok {
			io.WriteString(w, ka.(string))
			return
		}
		http.NotFound(w, r)
	})}
	go hs.Serve(hl)
	t.Cleanup(func() { hs.Close() })
	c.dnsAdr = startDNS(t)

	var out, errb lockedBuffer
	if code := run(context.Background(), []string{"init", "--home", c.dir, "--store", c.dbURL}, nil, &out, &errb); code != 0 {
		t.Fatalf("signet init --store: %s", errb.String())
	}
	for range n {
		c.start()
	}
	rootPEM, err := os.ReadFile(filepath.Join(c.dir, "root.pem"))
	if err != nil {
		t.Fatal(err)
	}
	c.roots = x509.NewCertPool()
	c.roots.AppendCertsFromPEM(rootPEM)
	return c
}

// start runs one more node: its own listeners, the shared home and database.
func (c *cluster) start() *nodeProc {
	t := c.t
	t.Helper()
	n := &nodeProc{addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), exited: make(chan struct{})}
	n.cmd = exec.Command(c.bin, "serve", "--home", c.dir, "--listen", n.addr,
		"--http-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "--acme-resolver", c.dnsAdr,
		"--acme-http-port", strconv.Itoa(c.http01), "--acme-tls-port", strconv.Itoa(freePort(t)))
	n.cmd.Stdout, n.cmd.Stderr = io.Discard, &n.stderr
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { n.cmd.Wait(); close(n.exited) }()
	t.Cleanup(func() {
		n.cmd.Process.Signal(os.Interrupt)
		select {
		case <-n.exited:
		case <-time.After(15 * time.Second):
			n.cmd.Process.Kill()
			t.Errorf("node %s did not stop", n.addr)
		}
	})
	exited := make(chan int, 1)
	go func() { <-n.exited; exited <- -1 }()
	waitHealthy(t, c.dir, n.addr, exited, &n.stderr)
	c.nodes = append(c.nodes, n)
	return n
}

// balancer sends each request to the next live node in turn, as a load
// balancer without affinity would: consecutive requests of one client, and
// so a nonce and its use, land on different nodes.
type balancer struct {
	nodes []*nodeProc
	next  atomic.Uint64
	base  *http.Transport
	hits  sync.Map // addr -> *atomic.Int64
}

func (b *balancer) RoundTrip(r *http.Request) (*http.Response, error) {
	start := b.next.Add(1)
	var err error
	for i := range len(b.nodes) {
		n := b.nodes[(int(start)+i)%len(b.nodes)]
		r2 := r.Clone(r.Context())
		// The Host header stays: behind a balancer every node is one name.
		r2.URL.Host = n.addr
		if r.GetBody != nil {
			r2.Body, _ = r.GetBody()
		}
		var resp *http.Response
		if resp, err = b.base.RoundTrip(r2); err == nil {
			v, _ := b.hits.LoadOrStore(n.addr, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
			return resp, nil
		}
		var op *net.OpError
		if !errors.As(err, &op) || op.Op != "dial" {
			return nil, err // sent, perhaps handled: not retried elsewhere
		}
	}
	return nil, err
}

func (c *cluster) client(t *testing.T, nodes []*nodeProc, key *ecdsa.PrivateKey) (*acme.Client, *balancer) {
	b := &balancer{nodes: nodes, base: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.roots}, MaxIdleConnsPerHost: 4}}
	return &acme.Client{Key: key, DirectoryURL: "https://" + nodes[0].addr + "/acme/default/directory",
		HTTPClient: &http.Client{Transport: b, Timeout: 30 * time.Second}, UserAgent: "signet-nodes-test"}, b
}

// readyOrder creates an order for name and answers its http-01 challenge.
func (c *cluster) readyOrder(ctx context.Context, cl *acme.Client, name string) (*acme.Order, error) {
	o, err := cl.AuthorizeOrder(ctx, acme.DomainIDs(name))
	if err != nil {
		return nil, err
	}
	for _, u := range o.AuthzURLs {
		z, err := cl.GetAuthorization(ctx, u)
		if err != nil {
			return nil, err
		}
		for _, ch := range z.Challenges {
			if ch.Type != "http-01" {
				continue
			}
			ka, err := cl.HTTP01ChallengeResponse(ch.Token)
			if err != nil {
				return nil, err
			}
			c.tokens.Store(ch.Token, ka)
			if _, err := cl.Accept(ctx, ch); err != nil {
				return nil, err
			}
		}
	}
	return cl.WaitOrder(ctx, o.URI)
}

// issue runs a complete issuance and returns the certificate's serial.
func (c *cluster) issue(ctx context.Context, cl *acme.Client, name string) (string, error) {
	o, err := c.readyOrder(ctx, cl, name)
	if err != nil {
		return "", err
	}
	der, _, err := cl.CreateOrderCert(ctx, o.FinalizeURL, csrFor(name), true)
	if err != nil {
		return "", err
	}
	cert, err := x509.ParseCertificate(der[0])
	if err != nil {
		return "", err
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: c.roots, Intermediates: pool(der[1:]), DNSName: name}); err != nil {
		return "", err
	}
	return hex.EncodeToString(cert.SerialNumber.Bytes()), nil
}

func csrFor(name string) []byte {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{name}}, k)
	return der
}

func pool(ders [][]byte) *x509.CertPool {
	p := x509.NewCertPool()
	for _, d := range ders {
		if c, err := x509.ParseCertificate(d); err == nil {
			p.AddCert(c)
		}
	}
	return p
}

// TestTwoNodes: two `signet serve` processes on one real PostgreSQL. An
// ACME client whose requests alternate between them obtains certificates
// (nonces, accounts, orders and authorizations made on one node are
// honoured by the other); the two nodes finalizing the same order issue
// one certificate; a node killed with SIGKILL mid-load and PostgreSQL
// restarted mid-load lose nothing a client received and issue nothing
// twice, failing requests with problem documents meanwhile.
func TestTwoNodes(t *testing.T) {
	c := newCluster(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cl, lb := c.client(t, c.nodes, key)
	if _, err := cl.Register(ctx, &acme.Account{Contact: []string{"mailto:ops@example.org"}}, acme.AcceptTOS); err != nil {
		t.Fatal(err)
	}
	received := map[string]string{} // serial -> name
	var mu sync.Mutex
	for i := range 3 {
		name := fmt.Sprintf("alt%d.signet.test", i)
		serial, err := c.issue(ctx, cl, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		received[serial] = name
	}
	for _, n := range c.nodes {
		v, ok := lb.hits.Load(n.addr)
		if !ok || v.(*atomic.Int64).Load() < 10 {
			t.Fatalf("node %s served too few requests of the alternating client", n.addr)
		}
	}

	// Both nodes finalize the same ready order at once: one certificate.
	o, err := c.readyOrder(ctx, cl, "race.signet.test")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wins := make([]string, 2)
	for i, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pinned, _ := c.client(t, []*nodeProc{n}, key)
			pinned.KID = cl.KID
			der, _, err := pinned.CreateOrderCert(ctx, o.FinalizeURL, csrFor("race.signet.test"), true)
			if err == nil {
				cert, _ := x509.ParseCertificate(der[0])
				wins[i] = hex.EncodeToString(cert.SerialNumber.Bytes())
			} else {
				t.Logf("node %d finalizing the raced order: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if wins[0] == "" && wins[1] == "" {
		t.Fatal("neither node finalized the raced order")
	}
	if wins[0] != "" && wins[1] != "" && wins[0] != wins[1] {
		t.Errorf("two certificates for one order: %s and %s", wins[0], wins[1])
	}
	for _, s := range wins {
		if s != "" {
			received[s] = "race.signet.test"
		}
	}

	// Load from 4 clients; one node is killed with SIGKILL half-way, then
	// PostgreSQL is restarted under the surviving node.
	var issued atomic.Int64
	var failures atomic.Int64
	var badErrs []error
	stop := make(chan struct{})
	var workers sync.WaitGroup
	for w := range 4 {
		workers.Add(1)
		go func() {
			defer workers.Done()
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			wc, _ := c.client(t, c.nodes, k)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if wc.KID == "" {
					if _, err := wc.Register(ctx, &acme.Account{}, acme.AcceptTOS); err != nil {
						failures.Add(1)
						time.Sleep(100 * time.Millisecond)
						continue
					}
				}
				name := fmt.Sprintf("w%d-%d.signet.test", w, i)
				ictx, icancel := context.WithTimeout(ctx, 20*time.Second)
				serial, err := c.issue(ictx, wc, name)
				icancel()
				mu.Lock()
				if err == nil {
					received[serial] = name
					issued.Add(1)
				} else {
					failures.Add(1)
					var ae *acme.Error
					var op *net.OpError
					// A problem document, or a connection that died with
					// its node; anything else is not a clean failure.
					if !errors.As(err, &ae) && !errors.As(err, &op) && !errors.Is(err, io.EOF) &&
						!errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "connection reset") &&
						!strings.Contains(err.Error(), "EOF") {
						badErrs = append(badErrs, err)
					}
				}
				mu.Unlock()
			}
		}()
	}
	waitFor := func(n int64, what string) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for issued.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: only %d issued (%d failures)", what, issued.Load(), failures.Load())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor(6, "before the kill")
	c.nodes[1].cmd.Process.Signal(syscall.SIGKILL)
	<-c.nodes[1].exited
	at := issued.Load()
	waitFor(at+6, "after killing a node")

	// PostgreSQL goes away: the surviving node answers with problem
	// documents, and issues again once it is back.
	c.pg.Stop()
	token, err := os.ReadFile(filepath.Join(c.dir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"api.signet.test"}}, k)
	body, _ := json.Marshal(map[string]any{"csr": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}))})
	req, _ := http.NewRequest("POST", "https://"+c.nodes[0].addr+"/api/v1/authorities/default/certificates", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
	req.Header.Set("Content-Type", "application/json")
	hc := &http.Client{Timeout: 40 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.roots}}}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("issuing with PostgreSQL down: %v", err)
	}
	problem, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode < 500 || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("issuing with PostgreSQL down: %d %s %s, want a 5xx problem document", resp.StatusCode, resp.Header.Get("Content-Type"), problem)
	}
	t.Logf("with PostgreSQL down: %d %s", resp.StatusCode, problem)
	time.Sleep(time.Second)
	c.pg.StartAgain()
	at = issued.Load()
	waitFor(at+4, "after PostgreSQL came back")
	close(stop)
	workers.Wait()
	select {
	case <-c.nodes[0].exited:
		t.Fatalf("the surviving node exited: %s", c.nodes[0].stderr.String())
	default:
	}
	if strings.Contains(c.nodes[0].stderr.String(), "panic") {
		t.Errorf("the surviving node panicked:\n%s", c.nodes[0].stderr.String())
	}
	for _, err := range badErrs {
		t.Errorf("unclean failure: %v", err)
	}
	t.Logf("%d certificates received by clients, %d failed attempts", len(received), failures.Load())

	// Every certificate a client received is in the store, once; no name
	// was issued twice; the audit chain verifies.
	st, err := postgres.Open(context.Background(), c.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	all, err := st.Certificates(context.Background(), store.Filter{WithInternal: true})
	if err != nil {
		t.Fatal(err)
	}
	bySerial, byName := map[string]int{}, map[string]int{}
	for _, cert := range all {
		bySerial[cert.Serial]++
		for _, n := range cert.DNSNames {
			if strings.HasSuffix(n, ".signet.test") {
				byName[n]++
			}
		}
	}
	for serial, name := range received {
		if bySerial[serial] != 1 {
			t.Errorf("certificate %s for %s received by a client is in the store %d times", serial, name, bySerial[serial])
		}
	}
	for name, n := range byName {
		if n != 1 {
			t.Errorf("%s issued %d times", name, n)
		}
	}
	if rep, err := audit.Verify(context.Background(), st); err != nil || rep.Certificates != int64(len(all)) {
		t.Errorf("audit.Verify: %+v, %v", rep, err)
	}
}
