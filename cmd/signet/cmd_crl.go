package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"signet/internal/config"
	"signet/internal/errs"
	"signet/internal/revocation"
)

// cmdCrl signs every CRL shard of an authority and writes them as
// DIR/<authority>/<shard>.crl (DER), the layout of the /crl/ URLs, so DIR
// can be published by any web server.
func cmdCrl(e *env, args []string) error {
	f := newFlags(e, "crl")
	var u unlockFlags
	u.register(f)
	authority := f.String("authority", "", "authority `NAME`")
	out := f.String("out", ".", "write DIR/<authority>/<shard>.crl under this `DIR`")
	validity := f.String("validity", "24h", "nextUpdate - thisUpdate, a `DURATION` such as 24h or 7d")
	quiet := f.Bool("quiet", false, "no progress output")
	if err := f.parseNone(args); err != nil {
		return err
	}
	if *authority == "" {
		return badUsage("--authority NAME is required")
	}
	crlValidity, err := config.ParseDuration(*validity)
	if err != nil {
		return err
	}
	h, err := openHome(e, f, u.unlock())
	if err != nil {
		return err
	}
	defer h.Close()
	dir := filepath.Join(*out, *authority)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return errs.Wrap(errs.Unavailable, err, "creating %s", dir)
	}
	start := time.Now()
	var total, entries int
	crls, err := revocation.SignAll(e.ctx, revocation.Options{CA: h.CA, Store: h.Store, CRLValidity: crlValidity}, *authority,
		func(p revocation.Progress) {
			if p.Signed == nil {
				if !*quiet {
					fmt.Fprintf(e.stderr, "read %d certificates of %s (%s)\n", p.Loaded, *authority, time.Since(start).Round(time.Millisecond))
				}
				return
			}
			total, entries = total+len(p.Signed.DER), entries+p.Signed.Entries
			if !*quiet {
				fmt.Fprintf(e.stderr, "signed shard %d: %d entries, %d bytes, CRL number %d (%s)\n",
					p.Signed.Shard, p.Signed.Entries, len(p.Signed.DER), p.Signed.Number, time.Since(start).Round(time.Millisecond))
			}
		})
	if err != nil {
		return err
	}
	for _, c := range crls {
		path := filepath.Join(dir, strconv.Itoa(c.Shard)+".crl")
		if err := os.WriteFile(path, c.DER, 0o644); err != nil {
			return errs.Wrap(errs.Unavailable, err, "writing %s", path)
		}
	}
	fmt.Fprintf(e.stdout, "wrote %d CRLs of %s to %s: %d entries, %d bytes, next update %s\n",
		len(crls), *authority, dir, entries, total, crls[0].NextUpdate.Format(time.RFC3339))
	return nil
}
