package main

import (
	"bytes"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// Script commands for the revocation scripts: they read URLs out of
// certificates and fetch them, so scripts test the URLs certificates name.

var httpClient = &http.Client{Timeout: 10 * time.Second}

// cmdCertURL sets VAR to the CRL distribution point, OCSP responder or
// issuer URL of the first certificate in a PEM file.
func cmdCertURL(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: certurl VAR crl|ocsp|issuer FILE")
	}
	c := firstCert(ts, args[2])
	var urls []string
	switch args[1] {
	case "crl":
		urls = c.CRLDistributionPoints
	case "ocsp":
		urls = c.OCSPServer
	case "issuer":
		urls = c.IssuingCertificateURL
	default:
		ts.Fatalf("certurl: want crl, ocsp or issuer")
	}
	if len(urls) != 1 {
		ts.Fatalf("%s: %d %s URLs, want 1: %v", args[2], len(urls), args[1], urls)
	}
	ts.Setenv(args[0], urls[0])
}

func firstCert(ts *testscript.TestScript, file string) *x509.Certificate {
	b, _ := pem.Decode([]byte(ts.ReadFile(file)))
	if b == nil {
		ts.Fatalf("%s: no PEM", file)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		ts.Fatalf("%v", err)
	}
	return c
}

// cmdFetch GETs URL into FILE and prints the status and headers (sorted),
// for stdout checks. With POST, it posts BODYFILE as CONTENT-TYPE.
//
//	fetch URL FILE
//	fetch URL FILE POST CONTENT-TYPE BODYFILE
func cmdFetch(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 && len(args) != 5 {
		ts.Fatalf("usage: fetch URL FILE [POST CONTENT-TYPE BODYFILE]")
	}
	var resp *http.Response
	var err error
	if len(args) == 5 {
		resp, err = httpClient.Post(args[0], args[3], bytes.NewReader([]byte(ts.ReadFile(args[4]))))
	} else {
		resp, err = httpClient.Get(args[0])
	}
	if err != nil {
		ts.Fatalf("%v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.Fatalf("%v", err)
	}
	if err := os.WriteFile(ts.MkAbs(args[1]), body, 0o644); err != nil {
		ts.Fatalf("%v", err)
	}
	fmt.Fprintf(ts.Stdout(), "status %d\n", resp.StatusCode)
	var keys []string
	for k := range resp.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(ts.Stdout(), "%s: %s\n", k, resp.Header.Get(k))
	}
	if (resp.StatusCode != 200) != neg {
		ts.Fatalf("%s: status %d", args[0], resp.StatusCode)
	}
}

// cmdWaitHTTP waits (up to 30s) until URL answers 200.
func cmdWaitHTTP(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waithttp URL")
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := httpClient.Get(args[0]); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
	}
	ts.Fatalf("%s never answered 200", args[0])
}

// cmdWaitCRL waits (up to 30s) until the CRL at URL lists (or, negated,
// does not list) the serial: the server notices a CLI revocation by polling.
func cmdWaitCRL(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: waitcrl URL SERIAL")
	}
	want, err := hex.DecodeString(args[1])
	if err != nil {
		ts.Fatalf("serial: %v", err)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := httpClient.Get(args[0])
		if err != nil {
			continue
		}
		der, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		l, err := x509.ParseRevocationList(der)
		if err != nil {
			ts.Fatalf("%s: %v", args[0], err)
		}
		found := false
		for _, e := range l.RevokedCertificateEntries {
			found = found || bytes.Equal(e.SerialNumber.Bytes(), want)
		}
		if found != neg {
			fmt.Fprintf(ts.Stdout(), "CRL number %v lists %d entries\n", l.Number, len(l.RevokedCertificateEntries))
			return
		}
	}
	ts.Fatalf("the CRL at %s never changed for %s", args[0], args[1])
}
