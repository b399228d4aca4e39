// Command signet-benchload fills a signet home with a large inventory for
// benchmarks (see package benchload): it is not part of signet.
//
//	go run ./cmd/signet-benchload --home DIR --count 1000000 --revoke-every 10
//
// It prints the database's size per certificate when done (SQLite homes).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"

	"signet/internal/benchload"
	"signet/internal/home"
)

func main() {
	dir := flag.String("home", os.Getenv("SIGNET_HOME"), "the home to fill")
	authority := flag.String("authority", "default", "the issuing authority")
	count := flag.Int("count", 100000, "certificates to issue")
	revokeEvery := flag.Int("revoke-every", 0, "revoke one certificate in every N (0: none)")
	workers := flag.Int("workers", 256, "certificates issued at once")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
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
