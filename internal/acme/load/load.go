// Package load is the ACME load generator: C clients, each with its own
// account, run complete issuances (newOrder → authorization → http-01
// served by the generator → finalize with a fresh P-256 CSR → download)
// against a server on loopback, bounded in count and time, each client's
// requests optionally alternating between several nodes on one store.
// cmd/acmeload drives it against `signet serve`; its test drives it
// in-process.
package load

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/miekg/dns"
)

// Config says what to run.
type Config struct {
	Directory string         // https://127.0.0.1:PORT/acme/NAME/directory
	Roots     *x509.CertPool // trusts the server
	Clients   int
	Count     int           // total issuances
	Duration  time.Duration // stop after this even if Count is not reached
	Domain    string        // names are c<i>-<n>.<Domain>; default load.test
	// Names, if positive, is how many names each client has: its n-th
	// issuance asks for c<i>-<n mod Names>, so that from the second round on
	// each order renews a name its account validated before (authorization
	// reuse). 0: every issuance asks for a new name.
	Names int
	// Nodes are further host:port addresses serving the same directory
	// (other `signet serve` nodes on one shared store). With any, each
	// client sends each request to the next node in turn, as a load
	// balancer without affinity would: a nonce, an order and its
	// authorization are used on a node other than the one that made them.
	Nodes []string
}

// Result is what a run measured.
type Result struct {
	Issued   int
	Failed   int
	FirstErr error
	Elapsed  time.Duration
	P50, P99 time.Duration
	Max      time.Duration
	// Requests counts the HTTP requests each node answered: the
	// directory's node first, then Config.Nodes in order.
	Requests []int64
	// Solved counts the http-01 challenges the clients answered; a reused
	// authorization is valid already and needs none.
	Solved int64
}

// PerSecond is the issuance rate.
func (r Result) PerSecond() float64 { return float64(r.Issued) / r.Elapsed.Seconds() }

// Responders answers http-01 for every client and A records for every name:
// start it before the server, which must validate against HTTPAddr and
// resolve through DNSAddr.
type Responders struct {
	HTTPAddr, DNSAddr string
	tokens            sync.Map // token -> key authorization
	hs                *http.Server
	ds                *dns.Server
}

// StartResponders listens on loopback.
func StartResponders() (*Responders, error) {
	r := &Responders{}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		hl.Close()
		return nil, err
	}
	r.HTTPAddr, r.DNSAddr = hl.Addr().String(), pc.LocalAddr().String()
	r.hs = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		tok := strings.TrimPrefix(req.URL.Path, "/.well-known/acme-challenge/")
		if ka, ok := r.tokens.Load(tok); ok {
			io.WriteString(w, ka.(string))
			return
		}
		http.NotFound(w, req)
	}), ReadHeaderTimeout: 5 * time.Second}
	go r.hs.Serve(hl)
	r.ds = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, m *dns.Msg) {
		a := new(dns.Msg)
		a.SetReply(m)
		if q := m.Question[0]; q.Qtype == dns.TypeA {
			a.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(127, 0, 0, 1)}}
		}
		w.WriteMsg(a)
	})}
	go r.ds.ActivateAndServe()
	return r, nil
}

// Close stops the responders.
func (r *Responders) Close() {
	r.hs.Close()
	r.ds.Shutdown()
}

// Run runs the load and reports.
func Run(ctx context.Context, cfg Config, resp *Responders) (Result, error) {
	if cfg.Clients <= 0 || cfg.Count <= 0 || cfg.Duration <= 0 {
		return Result{}, errors.New("load: clients, count and duration must be positive")
	}
	if cfg.Domain == "" {
		cfg.Domain = "load.test"
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	hits := make([]atomic.Int64, 1+len(cfg.Nodes))
	clients := make([]*client, cfg.Clients)
	for i := range clients {
		c, err := newClient(ctx, cfg, resp, i, hits)
		if err != nil {
			return Result{}, fmt.Errorf("client %d: %w", i, err)
		}
		clients[i] = c
	}
	var next atomic.Int64
	var mu sync.Mutex
	var res Result
	var lat []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				n := next.Add(1)
				if n > int64(cfg.Count) {
					return
				}
				if cfg.Names > 0 {
					n %= int64(cfg.Names)
				}
				t0 := time.Now()
				err := c.issue(ctx, fmt.Sprintf("c%d-%d.%s", i, n, cfg.Domain))
				d := time.Since(t0)
				mu.Lock()
				if err != nil {
					res.Failed++
					if res.FirstErr == nil && ctx.Err() == nil {
						res.FirstErr = err
					}
				} else {
					res.Issued++
					lat = append(lat, d)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	for i := range hits {
		res.Requests = append(res.Requests, hits[i].Load())
	}
	for _, c := range clients {
		res.Solved += c.solved
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		res.P50, res.P99, res.Max = lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)], lat[len(lat)-1]
	}
	return res, nil
}

// client is one ACME client with its account and keep-alive connection.
type client struct {
	http   *http.Client
	dir    struct{ NewNonce, NewAccount, NewOrder string }
	key    *ecdsa.PrivateKey
	thumb  string
	kid    string
	nonce  string
	tokens *sync.Map
	solved int64 // challenges answered
}

func newClient(ctx context.Context, cfg Config, resp *Responders, i int, hits []atomic.Int64) (*client, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(cfg.Directory)
	if err != nil {
		return nil, err
	}
	rr := &alternate{hosts: append([]string{u.Host}, cfg.Nodes...), hits: hits, base: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: cfg.Roots}, MaxIdleConnsPerHost: 2, ForceAttemptHTTP2: false,
	}}
	rr.next.Store(uint64(i)) // clients start on different nodes
	c := &client{key: key, tokens: &resp.tokens, http: &http.Client{Timeout: 30 * time.Second, Transport: rr}}
	t, _ := (&jose.JSONWebKey{Key: key.Public()}).Thumbprint(crypto.SHA256)
	c.thumb = base64.RawURLEncoding.EncodeToString(t)
	r, err := c.do(ctx, "GET", cfg.Directory, nil)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(r.body, &c.dir); err != nil {
		return nil, err
	}
	h, err := c.do(ctx, "HEAD", c.dir.NewNonce, nil)
	if err != nil {
		return nil, err
	}
	c.nonce = h.nonce
	r, err = c.post(ctx, c.dir.NewAccount, []byte(`{"termsOfServiceAgreed":true}`), true)
	if err != nil {
		return nil, err
	}
	c.kid = r.location
	return c, nil
}

// alternate sends each request to the next of the nodes. The Host header
// keeps the directory's name, as behind a balancer every node is one name,
// so the URLs the server signs into its answers stay those of the directory.
type alternate struct {
	hosts []string
	hits  []atomic.Int64
	next  atomic.Uint64
	base  http.RoundTripper
}

func (a *alternate) RoundTrip(r *http.Request) (*http.Response, error) {
	if len(a.hosts) == 1 {
		a.hits[0].Add(1)
		return a.base.RoundTrip(r)
	}
	i := int(a.next.Add(1) % uint64(len(a.hosts)))
	r2 := r.Clone(r.Context())
	r2.Host = r.URL.Host
	r2.URL.Host = a.hosts[i]
	a.hits[i].Add(1)
	return a.base.RoundTrip(r2)
}

type answer struct {
	status   int
	body     []byte
	nonce    string
	location string
}

func (c *client) do(ctx context.Context, method, url string, body []byte) (*answer, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/jose+json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	a := &answer{status: resp.StatusCode, body: b, nonce: resp.Header.Get("Replay-Nonce"), location: resp.Header.Get("Location")}
	if resp.StatusCode >= 400 {
		return a, fmt.Errorf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	return a, nil
}

// post signs and sends, with the nonce of the previous answer.
func (c *client) post(ctx context.Context, url string, payload []byte, jwk bool) (*answer, error) {
	opts := &jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{"url": url, "nonce": c.nonce}}
	if jwk {
		opts.EmbedJWK = true
	} else {
		opts.ExtraHeaders["kid"] = c.kid
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: c.key}, opts)
	if err != nil {
		return nil, err
	}
	obj, err := s.Sign(payload)
	if err != nil {
		return nil, err
	}
	body := obj.FullSerialize()
	if len(payload) == 0 {
		body = strings.Replace(body, `{"`, `{"payload":"","`, 1)
	}
	a, err := c.do(ctx, "POST", url, []byte(body))
	if a != nil && a.nonce != "" {
		c.nonce = a.nonce
	}
	return a, err
}

// solve answers an http-01 challenge and polls it until it is done. The
// token is served until then: a validation the POST answered "processing"
// fetches it later.
func (c *client) solve(ctx context.Context, url, token string) error {
	c.solved++
	c.tokens.Store(token, token+"."+c.thumb)
	defer c.tokens.Delete(token)
	a, err := c.post(ctx, url, []byte(`{}`), false)
	if err != nil {
		return err
	}
	var got struct{ Status string }
	json.Unmarshal(a.body, &got)
	for got.Status == "processing" || got.Status == "pending" {
		time.Sleep(5 * time.Millisecond)
		if a, err = c.post(ctx, url, nil, false); err != nil {
			return err
		}
		json.Unmarshal(a.body, &got)
	}
	if got.Status != "valid" {
		return fmt.Errorf("challenge %s", a.body)
	}
	return nil
}

// issue runs one complete issuance.
func (c *client) issue(ctx context.Context, name string) error {
	a, err := c.post(ctx, c.dir.NewOrder, []byte(`{"identifiers":[{"type":"dns","value":"`+name+`"}]}`), false)
	if err != nil {
		return err
	}
	var order struct {
		Status         string
		Authorizations []string
		Finalize       string
		Certificate    string
	}
	orderURL := a.location
	if err := json.Unmarshal(a.body, &order); err != nil {
		return err
	}
	for _, u := range order.Authorizations {
		a, err := c.post(ctx, u, nil, false)
		if err != nil {
			return err
		}
		var az struct {
			Status     string
			Challenges []struct{ Type, URL, Token, Status string }
		}
		if err := json.Unmarshal(a.body, &az); err != nil {
			return err
		}
		if az.Status == "valid" {
			continue // reused: as a client does, nothing to answer
		}
		i := slices.IndexFunc(az.Challenges, func(ch struct{ Type, URL, Token, Status string }) bool { return ch.Type == "http-01" })
		if i < 0 {
			return errors.New("no http-01 challenge")
		}
		ch := az.Challenges[i]
		if err := c.solve(ctx, ch.URL, ch.Token); err != nil {
			return err
		}
	}
	certKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{name}}, certKey)
	if err != nil {
		return err
	}
	a, err = c.post(ctx, order.Finalize, []byte(`{"csr":"`+base64.RawURLEncoding.EncodeToString(csr)+`"}`), false)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(a.body, &order); err != nil {
		return err
	}
	for order.Status == "processing" {
		time.Sleep(5 * time.Millisecond)
		if a, err = c.post(ctx, orderURL, nil, false); err != nil {
			return err
		}
		json.Unmarshal(a.body, &order)
	}
	if order.Certificate == "" {
		return fmt.Errorf("order %s", a.body)
	}
	a, err = c.post(ctx, order.Certificate, nil, false)
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(a.body, []byte("-----BEGIN CERTIFICATE-----")) {
		return errors.New("certificate download is not PEM")
	}
	return nil
}
