package main

import (
	"bufio"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"signet/internal/config"
	"signet/internal/errs"
	"signet/internal/home"
	"signet/internal/revocation"
)

// cmdCrl signs every CRL shard of an authority and writes them as
// DIR/<authority>/<shard>.crl (DER), the layout of the /crl/ URLs, so DIR
// can be published by any web server. With --whole it signs the
// authority's whole CRL instead and writes it to one file (DER, or PEM for
// software such as OpenVPN's --crl-verify).
func cmdCrl(e *env, args []string) error {
	f := newFlags(e, "crl")
	var u unlockFlags
	u.register(f)
	authority := f.String("authority", "", "authority `NAME`")
	out := f.String("out", "", "write DIR/<authority>/<shard>.crl under this `DIR` (default .); with --whole, the FILE to write, - for standard output")
	whole := f.Bool("whole", false, "sign the whole CRL (every shard's entries, one file) instead of the shards")
	pemOut := f.Bool("pem", false, "with --whole: write PEM instead of DER")
	validity := f.String("validity", "24h", "nextUpdate - thisUpdate, a `DURATION` such as 24h or 7d")
	quiet := f.Bool("quiet", false, "no progress output")
	if err := f.parseNone(args); err != nil {
		return err
	}
	if *authority == "" {
		return badUsage("--authority NAME is required")
	}
	if *pemOut && !*whole {
		return badUsage("--pem works with --whole only: shard CRLs are written DER, as relying parties fetch them")
	}
	if *whole && *out == "" {
		return badUsage("--whole needs --out FILE (- for standard output)")
	}
	if st, err := os.Stat(*out); *whole && err == nil && st.IsDir() {
		return badUsage("--out %s is a directory: with --whole, --out names the file to write", *out)
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
	if *whole {
		return writeWholeCRL(e, h, *authority, crlValidity, *out, *pemOut, *quiet)
	}
	if *out == "" {
		*out = "."
	}
	dir := filepath.Join(*out, *authority)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return errs.Wrap(errs.Unavailable, err, "creating %s", dir)
	}
	start := time.Now()
	var total, entries int
	crls, err := revocation.SignAll(e.ctx, revocation.Options{CA: h.CA, Store: h.Store, CRLValidity: crlValidity}, *authority, false,
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

// writeWholeCRL signs an authority's whole CRL and writes it to out, a
// file replaced whole (a relying party re-reading it never sees half of
// one), or standard output for "-".
func writeWholeCRL(e *env, h *home.Home, authority string, validity time.Duration, out string, asPEM, quiet bool) error {
	start := time.Now()
	crls, err := revocation.SignAll(e.ctx, revocation.Options{CA: h.CA, Store: h.Store, CRLValidity: validity}, authority, true,
		func(p revocation.Progress) {
			if !quiet && p.Signed == nil {
				fmt.Fprintf(e.stderr, "read %d certificates of %s (%s)\n", p.Loaded, authority, time.Since(start).Round(time.Millisecond))
			}
		})
	if err != nil {
		return err
	}
	c := crls[0]
	write := func(w io.Writer) error {
		if !asPEM {
			_, err := w.Write(c.DER)
			return err
		}
		// Encoded as it is written: a million entries are 45 MB of DER,
		// 61 MB of PEM that need not be held too.
		bw := bufio.NewWriterSize(w, 1<<16)
		if err := pem.Encode(bw, &pem.Block{Type: "X509 CRL", Bytes: c.DER}); err != nil {
			return err
		}
		return bw.Flush()
	}
	summary := fmt.Sprintf("whole CRL of %s: %d entries, %d bytes, CRL number %d, next update %s",
		authority, c.Entries, len(c.DER), c.Number, c.NextUpdate.Format(time.RFC3339))
	if out == "-" {
		if err := write(e.stdout); err != nil {
			return errs.Wrap(errs.Unavailable, err, "writing the CRL to standard output")
		}
		if !quiet {
			fmt.Fprintln(e.stderr, "wrote the "+summary)
		}
		return nil
	}
	if err := config.ReplaceFile(out, 0o644, write); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote the %s to %s\n", summary, out)
	return nil
}
