// Command acmeload measures signet's ACME server: it starts `signet serve`
// on a fresh home on loopback — SQLite, or one or more nodes sharing a
// fresh PostgreSQL database — runs C clients doing complete issuances with
// internal/acme/load, and reports certificates/s, latency, the servers' CPU
// per certificate and their memory, next to the bare cryptography ceiling
// measured in the same run.
//
//	go build -o /tmp/signet ./cmd/signet
//	go run ./cmd/acmeload -signet /tmp/signet -clients 8 -count 5000
//	. scripts/postgres-throwaway   # exports SIGNET_TEST_POSTGRES
//	go run ./cmd/acmeload -signet /tmp/signet -store postgres -nodes 2
//	go run ./cmd/acmeload -signet /tmp/signet -compare -count 1500
//	go run ./cmd/acmeload -signet /tmp/signet -names 10   # renewals: authorizations reused
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"signet/internal/acme/load"
	"signet/internal/cputime"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "acmeload:", err)
		os.Exit(1)
	}
}

const usage = `acmeload measures complete ACME issuances against signet serve on loopback.

-store sqlite (the default) runs one node on a durable SQLite home.
-store postgres://USER@HOST:PORT/DB names a PostgreSQL server acmeload may
create databases on: each run gets a fresh database (dropped afterwards),
"signet init --store" on it, and -nodes signet serve processes, each with
its own home (a copy of the first: same keys and store URL, its own
listeners). -store postgres takes that URL from $SIGNET_TEST_POSTGRES; for a
throwaway server (initdb in a temporary directory, fsync=off), first run
  . scripts/postgres-throwaway
With several nodes each client sends each request to the next node in turn.
-compare runs SQLite with one node, then PostgreSQL with one and two nodes,
back to back, on the PostgreSQL server -store names (or
$SIGNET_TEST_POSTGRES), and prints them side by side.

`

type options struct {
	bin      string
	clients  int
	count    int
	names    int
	duration time.Duration
}

func run() error {
	var o options
	flag.StringVar(&o.bin, "signet", "", "the signet binary to run (go build -o /tmp/signet ./cmd/signet)")
	flag.IntVar(&o.clients, "clients", 8, "concurrent clients, each with its own account")
	flag.IntVar(&o.count, "count", 5000, "issuances in total, per run")
	flag.IntVar(&o.names, "names", 0, "names per client, reordered in turn: from the second round on every order renews a name (authorization reuse); 0: a new name for every issuance")
	flag.DurationVar(&o.duration, "duration", 2*time.Minute, "stop a run after this long in any case")
	storeFlag := flag.String("store", "sqlite", "sqlite, postgres ($SIGNET_TEST_POSTGRES) or a postgres:// URL of a server to create databases on")
	nodes := flag.Int("nodes", 1, "signet serve processes on the one PostgreSQL database")
	compare := flag.Bool("compare", false, "run SQLite (1 node), PostgreSQL (1 node) and PostgreSQL (2 nodes) back to back")
	cpuProfile := flag.String("cpuprofile", "", "write this process's CPU profile (clients and responders) to `FILE`")
	flag.Usage = func() {
		fmt.Fprint(flag.CommandLine.Output(), usage)
		flag.PrintDefaults()
	}
	flag.Parse()
	if o.bin == "" {
		return fmt.Errorf("give -signet PATH")
	}
	if o.clients <= 0 || o.count <= 0 || o.duration <= 0 || *nodes <= 0 {
		return fmt.Errorf("-clients, -count, -duration and -nodes must be positive")
	}
	if o.names < 0 {
		return fmt.Errorf("-names must be 0 (a new name each time) or positive")
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	admin := *storeFlag
	if admin == "postgres" || (*compare && admin == "sqlite") {
		if admin = os.Getenv("SIGNET_TEST_POSTGRES"); admin == "" {
			return fmt.Errorf("SIGNET_TEST_POSTGRES is not set: give -store postgres://... or run . scripts/postgres-throwaway first")
		}
	}
	if admin != "sqlite" && !strings.HasPrefix(admin, "postgres://") && !strings.HasPrefix(admin, "postgresql://") {
		return fmt.Errorf("-store %q: want sqlite, postgres or a postgres:// URL", admin)
	}
	type plan struct {
		admin string
		nodes int
	}
	plans := []plan{{admin, *nodes}}
	if *compare {
		plans = []plan{{"sqlite", 1}, {admin, 1}, {admin, 2}}
	} else if admin == "sqlite" && *nodes > 1 {
		return fmt.Errorf("-nodes %d needs a PostgreSQL -store: nodes share one database", *nodes)
	}
	var reports []report
	for _, p := range plans {
		r, err := measure(o, p.admin, p.nodes)
		if err != nil {
			return err
		}
		r.print()
		reports = append(reports, r)
	}
	ceiling := load.Ceiling(300)
	ceilingRate := float64(runtime.NumCPU()) / ceiling.Seconds()
	fmt.Printf("crypto ceiling   %.3f ms/issuance on one core = %.0f/s on %d cores\n", ms(ceiling), ceilingRate, runtime.NumCPU())
	for _, r := range reports {
		fmt.Printf("  %-22s %5.0f certificates/s = %.0f%% of the ceiling\n", r.name, r.res.PerSecond(), 100*r.res.PerSecond()/ceilingRate)
	}
	return nil
}

// report is what one run measured.
type report struct {
	name    string
	nodes   int
	clients int
	res     load.Result
	cpu     time.Duration // all nodes
	rss     []int64       // KiB per node, now and peak
	hwm     []int64
	self    time.Duration // this process (the clients and responders)
	pg      *pgStats
}

func (r report) print() {
	res := r.res
	fmt.Printf("== %s: clients %d, issued %d, failed %d in %s (loopback, %d CPUs)\n",
		r.name, r.clients, res.Issued, res.Failed, res.Elapsed.Round(time.Millisecond), runtime.NumCPU())
	if res.FirstErr != nil {
		fmt.Printf("first error: %v\n", res.FirstErr)
	}
	fmt.Printf("certificates/s   %.0f\n", res.PerSecond())
	fmt.Printf("latency p50/p99  %.1f ms / %.1f ms (max %.1f ms)\n", ms(res.P50), ms(res.P99), ms(res.Max))
	fmt.Printf("challenges       %d answered (the others' authorizations were reused)\n", res.Solved)
	if r.nodes > 1 {
		fmt.Printf("requests/node    %v\n", res.Requests)
	}
	if res.Issued > 0 {
		per := func(d time.Duration) float64 { return ms(d) / float64(res.Issued) }
		fmt.Printf("server CPU/cert  %.2f ms (summed over %d node(s))\n", per(r.cpu), r.nodes)
		if r.pg != nil && r.pg.cpuKnown {
			fmt.Printf("PostgreSQL CPU/cert %.2f ms\n", per(r.pg.cpu))
		}
		fmt.Printf("client CPU/cert  %.2f ms (this process: clients, http-01 and DNS responders)\n", per(r.self))
		if r.pg != nil {
			fmt.Printf("PostgreSQL/cert  %.1f transactions, %.1f rows written, %.1f rows read\n",
				float64(r.pg.xacts)/float64(res.Issued), float64(r.pg.written)/float64(res.Issued), float64(r.pg.read)/float64(res.Issued))
		}
	}
	for i := range r.rss {
		fmt.Printf("node %d RSS       %.1f MiB now, %.1f MiB peak\n", i+1, float64(r.rss[i])/1024, float64(r.hwm[i])/1024)
	}
}

// measure runs one bounded load against nodes fresh signet serve processes
// on one new home: SQLite when admin is "sqlite", else a new database on
// the PostgreSQL server admin names.
func measure(o options, admin string, nodes int) (report, error) {
	r := report{name: fmt.Sprintf("SQLite, %d node", nodes), nodes: nodes, clients: o.clients}
	dir, err := os.MkdirTemp("", "acmeload")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), o.duration+2*time.Minute)
	defer cancel()
	initArgs := []string{"init", "--home", filepath.Join(dir, "node1")}
	var db *pgDatabase
	if admin != "sqlite" {
		r.name = fmt.Sprintf("PostgreSQL, %d node(s)", nodes)
		if db, err = createDatabase(ctx, admin); err != nil {
			return r, err
		}
		defer db.drop()
		initArgs = append(initArgs, "--store", db.url)
	}
	if out, err := exec.CommandContext(ctx, o.bin, initArgs...).CombinedOutput(); err != nil {
		return r, fmt.Errorf("signet init: %v\n%s", err, out)
	}
	if err := liftLimits(filepath.Join(dir, "node1", "signet.toml")); err != nil {
		return r, err
	}
	// Every further node gets its own home: a copy of the first (the
	// same keys, as an HSM would share them, and the same store URL).
	for i := 2; i <= nodes; i++ {
		if err := copyDir(filepath.Join(dir, "node1"), filepath.Join(dir, fmt.Sprintf("node%d", i))); err != nil {
			return r, err
		}
	}
	resp, err := load.StartResponders()
	if err != nil {
		return r, err
	}
	defer resp.Close()
	_, httpPort, _ := net.SplitHostPort(resp.HTTPAddr)
	var procs []*exec.Cmd
	var addrs []string
	defer func() {
		for _, p := range procs {
			p.Process.Signal(os.Interrupt)
			p.Wait()
		}
	}()
	var roots *x509.CertPool
	for i := 1; i <= nodes; i++ {
		addr, err := freeAddr()
		if err != nil {
			return r, err
		}
		plainAddr, err := freeAddr()
		if err != nil {
			return r, err
		}
		h := filepath.Join(dir, fmt.Sprintf("node%d", i))
		cmd := exec.CommandContext(ctx, o.bin, "serve", "--home", h, "--listen", addr, "--http-listen", plainAddr,
			"--acme-resolver", resp.DNSAddr, "--acme-http-port", httpPort, "--acme-tls-port", "1")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			return r, err
		}
		procs = append(procs, cmd)
		addrs = append(addrs, addr)
		if roots, err = waitUp(filepath.Join(h, "root.pem"), addr); err != nil {
			return r, err
		}
	}
	var pgBefore *pgStats
	if db != nil {
		if pgBefore, err = db.stats(ctx, nil); err != nil {
			return r, err
		}
	}
	cpu0 := cpuTimes(procs)
	self0 := cputime.Process()
	res, err := load.Run(context.Background(), load.Config{
		Directory: "https://" + addrs[0] + "/acme/default/directory", Roots: roots, Nodes: addrs[1:],
		Clients: o.clients, Count: o.count, Duration: o.duration, Names: o.names,
	}, resp)
	if err != nil {
		return r, err
	}
	r.res = res
	r.cpu = cpuTimes(procs) - cpu0
	r.self = cputime.Process() - self0
	for _, p := range procs {
		rss, hwm := memory(p.Process.Pid)
		r.rss, r.hwm = append(r.rss, rss), append(r.hwm, hwm)
	}
	if db != nil {
		// CPU first, while the nodes' connections are still open; the row
		// and transaction counts once they have closed, when every backend
		// has flushed its statistics.
		after, err := db.stats(ctx, pgBefore)
		if err != nil {
			return r, err
		}
		for _, p := range procs {
			p.Process.Signal(os.Interrupt)
			p.Wait()
		}
		procs = nil
		if err := db.waitIdle(ctx); err != nil {
			return r, err
		}
		counts, err := db.stats(ctx, nil)
		if err != nil {
			return r, err
		}
		after.xacts, after.written, after.read = counts.xacts-pgBefore.xacts, counts.written-pgBefore.written, counts.read-pgBefore.read
		r.pg = after
	}
	return r, nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

// liftLimits turns off the rate limits a load run would hit (certificates
// per authority: 100/s after a burst of 500; orders per account: 300/h), so
// that every issuance completes and CPU per issuance is not diluted by
// refused finalizes. The other limits stay at their defaults.
func liftLimits(config string) error {
	f, err := os.OpenFile(config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString("\n[limits]\ncertificates_per_authority = \"0/1h\"\norders_per_account = \"0/1h\"\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

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

func cpuTimes(procs []*exec.Cmd) time.Duration {
	var t time.Duration
	for _, p := range procs {
		t += cpuTime(p.Process.Pid)
	}
	return t
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

// freeAddr picks a free loopback port for one of the server's listeners.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// copyDir copies a home, file modes kept.
func copyDir(from, to string) error {
	return filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		target := filepath.Join(to, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(target, info.Mode().Perm())
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm())
	})
}
