package main

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"signet/internal/ca"
	"signet/internal/errs"
	"signet/internal/kms"
)

// cmdDNSServer starts a DNS server for the rest of the script that answers
// 127.0.0.1 for every A query, and sets VAR to its address (serve's
// --acme-resolver, so an ACME client's names lead to the loopback).
func cmdDNSServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: dnsserver VAR")
	}
	addr, stop, err := loopbackDNS("")
	ts.Check(err)
	ts.Defer(stop)
	ts.Setenv(args[0], addr)
}

// cmdFreePort sets VAR to a free loopback TCP port.
func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: freeport VAR")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	ts.Check(err)
	defer ln.Close()
	ts.Setenv(args[0], strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
}

// cmdTLSFingerprint sets VAR to the SHA-256 fingerprint of the certificate
// the TLS server at ADDR presents, as serve prints it (the script then
// checks that serve printed the same).
func cmdTLSFingerprint(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: tlsfingerprint VAR ADDR")
	}
	conn, err := tls.Dial("tcp", args[1], &tls.Config{InsecureSkipVerify: true})
	ts.Check(err)
	defer conn.Close()
	sum := sha256.Sum256(conn.ConnectionState().PeerCertificates[0].Raw)
	s := ""
	for i, b := range sum {
		if i > 0 {
			s += ":"
		}
		s += fmt.Sprintf("%02X", b)
	}
	ts.Setenv(args[0], s)
}

// TestUnlockFinalTry: SoftHSM2 never reports a final PIN try, so the
// client's rule is checked on a status as a token that does (a YubiKey
// after two wrong PINs) makes the server report it: refused without
// --force, before the PIN is asked; warned with it.
func TestUnlockFinalTry(t *testing.T) {
	list := []ca.AuthorityStatus{{Name: "default", Key: kms.Location{Token: "ca", Unlock: true, Locked: true, PINCountLow: true, PINFinalTry: true}}}
	var warn bytes.Buffer
	err := pinTries(&warn, list, "ca", false, false)
	if errs.KindOf(err) != errs.Rejected || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("final try without --force: %v, want refused naming --force", err)
	}
	if err := pinTries(&warn, list, "ca", false, true); err != nil || !strings.Contains(warn.String(), "final try") {
		t.Fatalf("final try with --force: %v, warning %q", err, warn.String())
	}
}

// TestLocalAddr: a server listening on a wildcard address is reached on
// the loopback, a name its certificate carries.
func TestLocalAddr(t *testing.T) {
	for in, want := range map[string]string{
		"0.0.0.0:8443": "127.0.0.1:8443", "[::]:8443": "[::1]:8443", ":8443": "127.0.0.1:8443",
		"127.0.0.1:8443": "127.0.0.1:8443", "ca.example.org:443": "ca.example.org:443",
	} {
		if got := localAddr(in); got != want {
			t.Errorf("localAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
