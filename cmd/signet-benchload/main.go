// Command signet-benchload fills a signet home with a large inventory for
// benchmarks (see package benchload): it is not part of signet.
//
//	go run ./cmd/signet-benchload --home DIR --count 1000000 --revoke-every 10
//
// It prints the database's size per certificate when done (SQLite homes).
// With --sample N it loads nothing and writes, for an OCSP load (wrk; see
// BENCHMARKS.md), N certificates drawn uniformly from the home (SQLite or
// PostgreSQL): PREFIX.paths, one RFC 6960 GET path a line, and
// PREFIX.status, each one's serial and good or revoked.
//
//	go run ./cmd/signet-benchload --home DIR --sample 100000 --sample-out /tmp/s
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"signet/internal/benchload"
	"signet/internal/home"
)

func main() {
	dir := flag.String("home", os.Getenv("SIGNET_HOME"), "the home to fill")
	authority := flag.String("authority", "default", "the issuing authority")
	count := flag.Int("count", 100000, "certificates to issue")
	revokeEvery := flag.Int("revoke-every", 0, "revoke one certificate in every N (0: none)")
	workers := flag.Int("workers", 256, "certificates issued at once")
	sample := flag.Int("sample", 0, "load nothing: write this many uniformly drawn certificates' OCSP requests to --sample-out")
	sampleOut := flag.String("sample-out", "sample", "with --sample: the files' prefix (PREFIX.paths, PREFIX.status)")
	below := flag.String("below", "", "with --sample: only serials that sort before this one")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *sample > 0 {
		if err := writeSample(ctx, *dir, *authority, *sample, *below, *sampleOut); err != nil {
			fmt.Fprintln(os.Stderr, "signet-benchload:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, *dir, benchload.Options{Authority: *authority, Count: *count, RevokeEvery: *revokeEvery, Workers: *workers}); err != nil {
		fmt.Fprintln(os.Stderr, "signet-benchload:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dir string, o benchload.Options) error {
	h, err := home.Open(ctx, dir, home.Unlock{})
	if err != nil {
		return err
	}
	defer h.Close()
	o.Progress = func(n int) {
		if n%100000 == 0 {
			fmt.Fprintf(os.Stderr, "%d issued\n", n)
		}
	}
	rep, err := benchload.Load(ctx, h, o)
	fmt.Printf("issued %d certificates (%d revoked) in %s: %.0f/s\n", rep.Issued, rep.Revoked, rep.Elapsed.Round(1e6),
		float64(rep.Issued)/rep.Elapsed.Seconds())
	if err != nil {
		return err
	}
	if fi, err := os.Stat(filepath.Join(dir, "signet.db")); err == nil {
		fmt.Printf("signet.db: %d bytes\n", fi.Size())
	}
	return nil
}

func writeSample(ctx context.Context, dir, authority string, n int, below, prefix string) error {
	h, err := home.Open(ctx, dir, home.Unlock{})
	if err != nil {
		return err
	}
	defer h.Close()
	samples, err := benchload.SampleInventory(ctx, h, authority, n, below)
	if err != nil {
		return err
	}
	var paths, status strings.Builder
	for _, s := range samples {
		paths.WriteString(s.Path + "\n")
		fmt.Fprintf(&status, "%s %s\n", s.Serial, map[bool]string{false: "good", true: "revoked"}[s.Revoked])
	}
	if err := os.WriteFile(prefix+".paths", []byte(paths.String()), 0o644); err != nil {
		return err
	}
	fmt.Printf("%d certificates drawn\n", len(samples))
	return os.WriteFile(prefix+".status", []byte(status.String()), 0o644)
}
