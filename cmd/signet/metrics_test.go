package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/crypto/ocsp"

	"signet/internal/kms/kmstest"
	"signet/internal/metrics/metricstest"
)

// scrape reads /metrics at addr, checks it with promtool check metrics
// and parses the exposition.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	check := exec.Command("promtool", "check", "metrics")
	check.Stdin = bytes.NewReader(body)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the exposition does not parse: %v", err)
	}
	return fams
}

// value is the counter, gauge or histogram count of the metric in fams
// whose labels include want; 0 when there is none.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return 0
	}
	for _, m := range f.Metric {
		n := 0
		for _, l := range m.Label {
			if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
				n++
			}
		}
		if n != len(want) {
			continue
		}
		switch {
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		}
	}
	return 0
}

// TestMetrics scrapes /metrics from a real serve before and after
// issuance over the API: the issuance histogram moves by exactly what was
// asked, refusals are counted by their kind, and the store's gauges say
// what the store holds.
func TestMetrics(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home")
	maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	addr, client, stdout, _ := startServe(t, dir, "--metrics-listen", maddr)
	if !strings.Contains(stdout.String(), "metrics on http://"+maddr+"/metrics") {
		t.Errorf("serve should say where its metrics are:\n%s", stdout.String())
	}
	token, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	issue := func(authority, validity string, names ...string) int {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: names[0]}, DNSNames: names}, key)
		body, _ := json.Marshal(map[string]string{"csr": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})), "validity": validity})
		req, _ := http.NewRequest("POST", "https://"+addr+"/api/v1/authorities/"+authority+"/certificates", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	issuedLabels := map[string]string{"authority": "default", "outcome": "issued"}
	certs := map[string]string{"authority": "default", "status": "valid"}
	before := scrape(t, maddr)
	// Two for the default validity, one expiring in three days.
	for i, validity := range []string{"30d", "90d", "3d"} {
		if code := issue("default", validity, fmt.Sprintf("m%d.example.org", i)); code != 201 && code != 200 {
			t.Fatalf("issuing over the API: %d", code)
		}
	}
	if code := issue("nosuch", "", "x.example.org"); code < 400 {
		t.Fatalf("an unknown authority should be refused, got %d", code)
	}
	// An endpoint recorded by signet check (serve's own HTTPS listener)
	// is exported with its verdict and expiry.
	var co, ce lockedBuffer
	code := run(t.Context(), []string{"check", addr, "--home", dir, "--record"}, nil, &co, &ce)
	after := scrape(t, maddr)
	if value(after, "signet_endpoint_checked_timestamp_seconds", map[string]string{"endpoint": addr}) == 0 {
		t.Errorf("no recorded endpoint %s in the scrape (signet check exit %d):\n%s%s\n%v", addr, code, co.String(), ce.String(), after["signet_endpoint_checked_timestamp_seconds"])
	}
	if d := value(after, "signet_issuance_duration_seconds", issuedLabels) - value(before, "signet_issuance_duration_seconds", issuedLabels); d != 3 {
		t.Errorf("issued count moved by %v, want 3", d)
	}
	if d := value(after, "signet_issuance_duration_seconds", map[string]string{"authority": "unknown", "outcome": "not-found"}) -
		value(before, "signet_issuance_duration_seconds", map[string]string{"authority": "unknown", "outcome": "not-found"}); d != 1 {
		t.Errorf("refusal for an unknown authority moved by %v, want 1:\n%v", d, after["signet_issuance_duration_seconds"])
	}
	moved(t, before, after, "signet_signing_duration_seconds", map[string]string{"backend": "software", "token": "", "outcome": "ok"}, 3)
	moved(t, before, after, "signet_signing_duration_seconds", map[string]string{"backend": "pkcs11"}, 0)
	if d := value(after, "signet_certificates", certs) - value(before, "signet_certificates", certs); d != 3 {
		t.Errorf("valid certificates gauge moved by %v, want 3", d)
	}
	for days, want := range map[string]float64{"1": 0, "7": 1, "30": 2} {
		l := map[string]string{"authority": "default", "within_days": days}
		if d := value(after, "signet_certificates_expiring", l) - value(before, "signet_certificates_expiring", l); d != want {
			t.Errorf("certificates expiring within %s days moved by %v, want %v", days, d, want)
		}
	}
	// Three issuances, three audit events; the CRLs serve signed at start
	// are the ones published.
	moved(t, before, after, "signet_audit_head_seq", nil, 3)
	for _, shard := range []string{"0", "whole"} {
		l := map[string]string{"authority": "default", "shard": shard}
		if value(after, "signet_crl_bytes", l) == 0 {
			t.Errorf("no size of CRL %s of authority default:\n%v", shard, after["signet_crl_bytes"])
		}
		this, next := value(after, "signet_crl_this_update_timestamp_seconds", l), value(after, "signet_crl_next_update_timestamp_seconds", l)
		if this == 0 || next <= this {
			t.Errorf("CRL %s of authority default: thisUpdate %v, nextUpdate %v", shard, this, next)
		}
	}
	if v := value(after, "signet_authority_state", map[string]string{"authority": "default", "state": "unlocked"}); v != 1 {
		t.Errorf("authority default should be unlocked (1), got %v", v)
	}
	if value(after, "signet_ca_certificate_not_after_timestamp_seconds", map[string]string{"authority": "default"}) == 0 {
		t.Error("no CA certificate expiry for authority default")
	}
	// Every metric the dashboard and the alerts query is in the scrape.
	for _, file := range []string{"../../contrib/grafana/signet.json", "../../contrib/prometheus/alerts.yml"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		names := regexp.MustCompile(`signet_[a-z_]+`).FindAllString(string(b), -1)
		if len(names) == 0 {
			t.Errorf("%s queries no signet metric", file)
		}
		for _, n := range names {
			// A histogram's series are its name with _count, _sum, _bucket.
			if after[n] == nil && after[regexp.MustCompile(`_(count|sum|bucket)$`).ReplaceAllString(n, "")] == nil {
				t.Errorf("%s queries %s, which a real scrape does not have", file, n)
			}
		}
	}
}

// TestAlertRules runs the alert rules' own tests with promtool.
func TestAlertRules(t *testing.T) {
	cmd := exec.Command("promtool", "test", "rules", "alerts_test.yml")
	cmd.Dir = "../../contrib/prometheus"
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
}

// TestMetricsListen: off serves nothing; a port in use stops serve before
// it makes a home.
func TestMetricsListen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home")
	_, _, stdout, _ := startServe(t, dir, "--metrics-listen", "off")
	if strings.Contains(stdout.String(), "metrics on") {
		t.Errorf("--metrics-listen off still serves metrics:\n%s", stdout.String())
	}

	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	missing := filepath.Join(t.TempDir(), "missing")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"serve", "--home", missing, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
		"--metrics-listen", busy.Addr().String()}, nil, &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "cannot listen on "+busy.Addr().String()) || !strings.Contains(errb.String(), "--metrics-listen or metrics_listen") {
		t.Errorf("a metrics port in use should stop serve with a clear error, got %d: %s", code, errb.String())
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Error("serve made a home although it could not listen for metrics")
	}
}

// TestACMEMetricsAndLogs: lego obtains a certificate over ACME; the
// issuance counter moves by one, and serve logs the validation and the
// finalize at info level without the admin token.
func TestACMEMetricsAndLogs(t *testing.T) {
	lego := kmstest.RequireTool(t, "lego")
	dir := filepath.Join(t.TempDir(), "home")
	maddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	httpPort := freePort(t)
	addr, client, _, stderr := startServe(t, dir, "--metrics-listen", maddr, "--acme-resolver", startDNS(t),
		"--acme-http-port", strconv.Itoa(httpPort), "--acme-tls-port", strconv.Itoa(freePort(t)))
	issued := map[string]string{"authority": "default", "outcome": "issued"}
	before := scrape(t, maddr)
	legoDir := t.TempDir()
	legoRun := func(args ...string) {
		tool(t, []string{"LEGO_CA_CERTIFICATES=" + filepath.Join(dir, "root.pem")}, lego, append([]string{"--server", "https://" + addr + "/acme/default/directory",
			"--accept-tos", "--email", "ops@example.org", "--domains", "metrics.signet.test",
			"--http", "--http.port", "127.0.0.1:" + strconv.Itoa(httpPort), "--path", legoDir}, args...)...)
	}
	legoRun("run")
	// A new-order without a JWS is malformed; a path no route serves is
	// counted as other, never by its path.
	for _, path := range []string{"/acme/default/new-order", "/acme/default/no-such-thing/12345"} {
		resp, err := client.Post("https://"+addr+path, "application/jose+json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	after := scrape(t, maddr)
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"signet_issuance_duration_seconds", issued, 1},
		{"signet_acme_requests_total", map[string]string{"endpoint": "POST /acme/{auth}/new-account", "problem": ""}, 1},
		{"signet_acme_requests_total", map[string]string{"endpoint": "POST /acme/{auth}/new-order", "problem": ""}, 1},
		{"signet_acme_requests_total", map[string]string{"endpoint": "POST /acme/{auth}/order/{id}/finalize", "problem": ""}, 1},
		{"signet_acme_requests_total", map[string]string{"endpoint": "POST /acme/{auth}/chall/{id}/{n}/{type}", "problem": ""}, 1},
		{"signet_acme_requests_total", map[string]string{"endpoint": "POST /acme/{auth}/new-order", "problem": "urn:ietf:params:acme:error:malformed"}, 1},
		{"signet_acme_requests_total", map[string]string{"endpoint": "other", "problem": "urn:ietf:params:acme:error:malformed"}, 1},
		{"signet_acme_validations_total", map[string]string{"challenge": "http-01", "outcome": "valid", "problem": ""}, 1},
		{"signet_acme_orders", map[string]string{"authority": "default", "state": "valid"}, 1},
		{"signet_acme_orders", map[string]string{"authority": "default", "state": "pending"}, 0},
	} {
		if d := value(after, c.name, c.labels) - value(before, c.name, c.labels); d != c.want {
			t.Errorf("%s%v moved by %v, want %v", c.name, c.labels, d, c.want)
		}
	}
	for _, m := range after["signet_acme_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "endpoint" && strings.Contains(l.GetValue(), "no-such-thing") {
				t.Errorf("a requested path became a label: %v", m)
			}
		}
	}
	legoRun("revoke", "--reason", "4")
	// One line per order, validation, finalize, issuance and revocation,
	// each with the account, the authority, the identifiers and the
	// outcome; the account's ID is the one in lego's account file.
	logs := stderr.String()
	acct := regexp.MustCompile(`msg="acme order" account=(\S+) `).FindStringSubmatch(logs)
	if acct == nil {
		t.Fatalf("serve logged no ACME order:\n%s", logs)
	}
	if b, _ := os.ReadFile(filepath.Join(legoDir, "accounts", strings.Split(addr, ":")[0]+"_"+strings.Split(addr, ":")[1], "ops@example.org", "account.json")); !bytes.Contains(b, []byte("/"+acct[1]+`"`)) {
		t.Errorf("the logged account %s is not lego's: %s", acct[1], b)
	}
	for msg, fields := range map[string][]string{
		"acme order":      {"account=" + acct[1], "authority=default", "identifiers=dns:metrics.signet.test", "outcome=created", `problem=""`},
		"acme validation": {"account=" + acct[1], "authority=default", "identifier=dns:metrics.signet.test", "challenge=http-01", "outcome=valid", `problem=""`},
		"acme finalize":   {"account=" + acct[1], "authority=default", "identifiers=dns:metrics.signet.test", "outcome=issued", `problem=""`, "serial="},
		"issued":          {"authority=default", "requester=acme:" + acct[1], "identifiers=dns:metrics.signet.test", "serial="},
		"revoked":         {"authority=default", "reason=superseded", "actor=acme:" + acct[1], "serial="},
	} {
		lines := logLines(logs, msg)
		if len(lines) != 1 {
			t.Errorf("serve logged %d lines %q, want 1:\n%s", len(lines), msg, logs)
			continue
		}
		for _, f := range fields {
			if !strings.Contains(lines[0], " "+f) {
				t.Errorf("serve's %q line lacks %s: %s", msg, f, lines[0])
			}
		}
	}
	token, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs, strings.TrimSpace(string(token))) {
		t.Error("serve's log holds the admin token")
	}
}

// moved reports each metric whose change between before and after is not
// the wanted one.
func moved(t *testing.T, before, after map[string]*dto.MetricFamily, name string, labels map[string]string, want float64) {
	t.Helper()
	if d := metricstest.Sum(after, name, labels) - metricstest.Sum(before, name, labels); d != want {
		t.Errorf("%s%v moved by %v, want %v", name, labels, d, want)
	}
}

// serveAPI starts serve with a metrics listener and returns a caller of
// its admin API, the plain-HTTP and metrics addresses.
func serveAPI(t *testing.T, dir string, args ...string) (api func(method, path, ctype string, body []byte) (int, []byte), haddr, maddr string, stderr *lockedBuffer) {
	maddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	haddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	addr, client, _, stderr := startServe(t, dir, append([]string{"--metrics-listen", maddr, "--http-listen", haddr}, args...)...)
	token, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	api = func(method, path, ctype string, body []byte) (int, []byte) {
		req, _ := http.NewRequest(method, "https://"+addr+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	return api, haddr, maddr, stderr
}

// issueOver issues a certificate for name over the API and returns it
// with its issuer.
func issueOver(t *testing.T, api func(method, path, ctype string, body []byte) (int, []byte), name string) (leaf, issuer *x509.Certificate) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{name}}, key)
	code, chain := api("POST", "/api/v1/authorities/default/certificates", "application/pkcs10", csr)
	if code != http.StatusCreated {
		t.Fatalf("issue %s: %d %s", name, code, chain)
	}
	var certs []*x509.Certificate
	for p, rest := pem.Decode(chain); p != nil; p, rest = pem.Decode(rest) {
		c, err := x509.ParseCertificate(p.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	if len(certs) < 2 {
		t.Fatalf("issue %s: no chain in %s", name, chain)
	}
	return certs[0], certs[1]
}

// TestOCSPMetrics: OCSP responses are counted by status and by whether
// the cache answered: a first request is signed (miss), the same bytes
// again are a hit, a revoked certificate's is revoked, garbage malformed.
func TestOCSPMetrics(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "home")
	api, haddr, maddr, stderr := serveAPI(t, dir)
	good, issuer := issueOver(t, api, "good.example.org")
	revoked, _ := issueOver(t, api, "revoked.example.org")
	if code, b := api("POST", fmt.Sprintf("/api/v1/certificates/%x/revoke", revoked.SerialNumber), "application/json", []byte(`{"reason":"keyCompromise"}`)); code != 200 {
		t.Fatalf("revoke: %d %s", code, b)
	}
	ask := func(body []byte) int {
		resp, err := http.Post("http://"+haddr+"/ocsp/default", "application/ocsp-request", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		der, _ := io.ReadAll(resp.Body)
		r, err := ocsp.ParseResponse(der, issuer)
		if err != nil {
			return -1
		}
		return r.Status
	}
	request := func(c *x509.Certificate) []byte {
		b, err := ocsp.CreateRequest(c, issuer, nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	before := scrape(t, maddr)
	for i := range 2 {
		if st := ask(request(good)); st != ocsp.Good {
			t.Fatalf("OCSP request %d for a valid certificate: status %d", i, st)
		}
	}
	if st := ask(request(revoked)); st != ocsp.Revoked {
		t.Fatalf("OCSP for a revoked certificate: status %d", st)
	}
	ask([]byte("not an OCSP request"))
	after := scrape(t, maddr)
	moved(t, before, after, "signet_ocsp_responses_total", map[string]string{"status": "good", "cache": "miss"}, 1)
	moved(t, before, after, "signet_ocsp_responses_total", map[string]string{"status": "good", "cache": "hit"}, 1)
	moved(t, before, after, "signet_ocsp_responses_total", map[string]string{"status": "revoked"}, 1)
	moved(t, before, after, "signet_ocsp_responses_total", map[string]string{"status": "malformed", "cache": "miss"}, 1)
	moved(t, before, after, "signet_ocsp_responses_total", map[string]string{"status": "unknown"}, 0)

	// The API's issuances and revocation are logged, one line each, with
	// the names; not the admin token.
	logs := stderr.String()
	issued := logLines(logs, "issued")
	if len(issued) != 2 || !strings.Contains(issued[0], fmt.Sprintf(" serial=%x ", good.SerialNumber)) ||
		!strings.Contains(issued[0], " authority=default requester=") || !strings.Contains(issued[0], " identifiers=dns:good.example.org ") {
		t.Errorf("issued lines: %q", issued)
	}
	revokedLines := logLines(logs, "revoked")
	if len(revokedLines) != 1 || !strings.Contains(revokedLines[0], fmt.Sprintf(" serial=%x authority=default reason=keyCompromise actor=", revoked.SerialNumber)) {
		t.Errorf("revoked lines: %q", revokedLines)
	}
	token, err := os.ReadFile(filepath.Join(dir, "admin-token"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs, strings.TrimSpace(string(token))) {
		t.Error("serve's log holds the admin token")
	}
}

// TestSigningMetricsPKCS11: a home whose keys are on a SoftHSM2 token
// counts each signature under backend pkcs11 and the token's label.
func TestSigningMetricsPKCS11(t *testing.T) {
	module, pin := kmstest.SoftHSM(t, "ca")
	t.Setenv("SIGNET_PIN", pin)
	dir := filepath.Join(t.TempDir(), "home")
	for _, args := range [][]string{
		{"key", "generate", "--uri", "pkcs11:token=ca;object=root", "--module", module, "--type", "ecdsa-p256", "--pin", "env:SIGNET_PIN"},
		{"key", "generate", "--uri", "pkcs11:token=ca;object=issuing", "--module", module, "--type", "ecdsa-p256", "--pin", "env:SIGNET_PIN"},
		{"init", "--home", dir, "--key", "pkcs11:token=ca;object=root", "--authority-key", "pkcs11:token=ca;object=issuing", "--module", module, "--pin", "env:SIGNET_PIN"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, nil, &out, &errb); code != 0 {
			t.Fatalf("signet %s: %d %s", strings.Join(args, " "), code, errb.String())
		}
	}
	api, _, maddr, _ := serveAPI(t, dir)
	labels := map[string]string{"backend": "pkcs11", "token": "ca", "outcome": "ok"}
	before := scrape(t, maddr)
	issueOver(t, api, "a.example.org")
	issueOver(t, api, "b.example.org")
	after := scrape(t, maddr)
	moved(t, before, after, "signet_signing_duration_seconds", labels, 2)
	moved(t, before, after, "signet_signing_duration_seconds", map[string]string{"backend": "software"}, 0)
}

// logLines are the lines of a text log whose message is msg.
func logLines(logs, msg string) []string {
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, " level=INFO msg="+strconv.Quote(msg)+" ") || strings.Contains(l, " level=INFO msg="+msg+" ") {
			out = append(out, l)
		}
	}
	return out
}

// TestDashboardQueriesParse: every query of the Grafana dashboard is
// PromQL that Prometheus parses (promtool checks each as a recording rule).
func TestDashboardQueriesParse(t *testing.T) {
	promtool := kmstest.RequireTool(t, "promtool")
	b, err := os.ReadFile("../../contrib/grafana/signet.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	type rule struct {
		Record string `json:"record"`
		Expr   string `json:"expr"`
	}
	var rules []rule
	for _, p := range dash.Panels {
		for _, q := range p.Targets {
			rules = append(rules, rule{fmt.Sprintf("dashboard_query_%d", len(rules)+1), q.Expr})
		}
	}
	// JSON is YAML: a rules file promtool reads.
	file := filepath.Join(t.TempDir(), "dashboard.rules.yml")
	out, _ := json.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err := os.WriteFile(file, out, 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("a dashboard query does not parse: %v\n%s", err, b)
	}
}
