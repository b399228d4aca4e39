package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"signet/internal/kms/kmstest"
)

// signetCLI runs one signet command in this process and returns its
// standard output; the test fails if the command does.
func signetCLI(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut lockedBuffer
	if code := run(context.Background(), args, nil, &out, &errOut); code != 0 {
		t.Fatalf("signet %s: exit %d\n%s", strings.Join(args, " "), code, errOut.String())
	}
	return out.String()
}

// openvpnPath finds Debian's openvpn, which a non-root PATH may lack.
func openvpnPath(t *testing.T) string {
	if _, err := os.Stat("/usr/sbin/openvpn"); err == nil {
		return "/usr/sbin/openvpn"
	}
	return kmstest.RequireTool(t, "openvpn")
}

// vpnServer is an OpenVPN point-to-point TLS server on loopback without a
// tun device (--dev null). Over TCP it serves one client at a time and
// listens again when that client leaves, so cases share one server.
type vpnServer struct {
	port int
	log  *lockedBuffer
}

func startVPNServer(t *testing.T, ovpn string, args ...string) *vpnServer {
	t.Helper()
	s := &vpnServer{port: freePort(t), log: &lockedBuffer{}}
	base := []string{"--tls-server", "--dev", "null", "--proto", "tcp-server", "--local", "127.0.0.1",
		"--lport", strconv.Itoa(s.port), "--dh", "none", "--remote-cert-tls", "client", "--verb", "3"}
	cmd := exec.Command(ovpn, append(base, args...)...)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("openvpn server on port %d:\n%s", s.port, s.log.String())
		}
	})
	s.waitIdle(t)
	return s
}

// waitIdle waits until the server listens for a new client: it listened
// more often than it accepted.
func (s *vpnServer) waitIdle(t *testing.T) {
	t.Helper()
	for i := 0; ; i++ {
		log := s.log.String()
		if strings.Count(log, "Listening for incoming TCP connection") > strings.Count(log, "TCP connection established") {
			return
		}
		if i == 300 {
			t.Fatalf("openvpn server does not listen:\n%s", log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// vpnClient is how a client authenticates: a certificate and key file, or
// a key and certificate on a token, found by pkcs11-helper, whose PIN the
// test gives through OpenVPN's management interface.
type vpnClient struct {
	cert, key        string // files; for a token client, cert is a copy of the one on the token
	module, p11ID    string
	pin              string
	prompts          []string // the management interface's password prompts
	promptsMu        sync.Mutex
	extra            []string
	expectServerName string
}

// connect runs an OpenVPN client against s until the tunnel is up (true)
// or the client gives up after one attempt (false), and returns the
// client's log and what the server logged meanwhile.
func (c *vpnClient) connect(t *testing.T, ovpn, ca string, s *vpnServer) (up bool, clientLog, serverLog string) {
	t.Helper()
	s.waitIdle(t)
	from := len(s.log.String())
	defer func() { serverLog = s.log.String()[from:] }()
	args := []string{"--tls-client", "--dev", "null", "--proto", "tcp-client", "--remote", "127.0.0.1", strconv.Itoa(s.port),
		"--nobind", "--ca", ca, "--remote-cert-tls", "server", "--tls-exit", "--connect-retry-max", "1", "--verb", "3"}
	if c.expectServerName != "" {
		args = append(args, "--verify-x509-name", c.expectServerName, "name")
	}
	mgmt := 0
	if c.module != "" {
		mgmt = freePort(t)
		args = append(args, "--pkcs11-providers", c.module, "--pkcs11-id", c.p11ID,
			"--management", "127.0.0.1", strconv.Itoa(mgmt), "--management-query-passwords", "--management-hold")
	} else {
		args = append(args, "--cert", c.cert, "--key", c.key)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ovpn, append(args, c.extra...)...)
	var log lockedBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if mgmt != 0 {
		go c.answerPIN(ctx, mgmt)
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-exited:
			return false, log.String(), ""
		case <-tick.C:
			if strings.Contains(log.String(), "Initialization Sequence Completed") {
				cmd.Process.Signal(syscall.SIGTERM)
				<-exited
				return true, log.String(), ""
			}
		case <-ctx.Done():
			<-exited
			t.Fatalf("openvpn client: neither up nor refused within a minute:\n%s", log.String())
		}
	}
}

var passwordPrompt = regexp.MustCompile(`^>PASSWORD:Need '([^']*)' password`)

// answerPIN releases the client's hold and answers its password prompts
// with the PIN, as a GUI would.
func (c *vpnClient) answerPIN(ctx context.Context, port int) {
	var conn net.Conn
	for i := 0; i < 100 && ctx.Err() == nil; i++ {
		var err error
		if conn, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if conn == nil {
		return
	}
	defer conn.Close()
	go func() { <-ctx.Done(); conn.Close() }()
	sc := bufio.NewScanner(conn)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), ">HOLD:") {
			fmt.Fprintf(conn, "hold release\n")
		}
		if m := passwordPrompt.FindStringSubmatch(sc.Text()); m != nil {
			c.promptsMu.Lock()
			c.prompts = append(c.prompts, m[1])
			c.promptsMu.Unlock()
			fmt.Fprintf(conn, "password \"%s\" %s\n", m[1], c.pin)
		}
	}
}

// softwareLeaf issues a certificate of the authority for a key OpenSSL
// makes (keyArgs for openssl req -newkey), and returns the files.
func softwareLeaf(t *testing.T, dir, home, authority, name, usage string, keyArgs []string, names ...string) (cert, key string) {
	t.Helper()
	key, csr, cert := filepath.Join(dir, name+".key"), filepath.Join(dir, name+".csr"), filepath.Join(dir, name+".pem")
	args := append([]string{"req", "-new", "-nodes", "-subj", "/CN=" + name, "-keyout", key, "-out", csr}, keyArgs...)
	tool(t, nil, "openssl", args...)
	signetCLI(t, append([]string{"issue", "--home", home, "--authority", authority, "--csr", csr, "--usage", usage, "--out", cert}, names...)...)
	return cert, key
}

var (
	rsaKey  = []string{"-newkey", "rsa:2048"}
	p256Key = []string{"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"}
)

// vpnCA is a home with a vpn authority, and a user's SoftHSM2 token on
// a machine without a home.
type vpnCA struct {
	ovpn, module, pin string
	dir, home, root   string
	chain             string // the vpn authority's chain, for --extra-certs
}

// tokenClient makes a client the way a smartcard user would, with signet
// alone: the key generated on the token, the request signed there, the
// certificate (and its chain) written beside the key. It checks the
// certificate sits beside its key and finds its id as OpenVPN does.
func (v *vpnCA) tokenClient(t *testing.T, name, keyType, keyObject string) *vpnClient {
	t.Helper()
	tokenFlags := []string{"--uri", "pkcs11:token=vpnuser;object=" + name, "--module", v.module, "--pin", "env:SIGNET_TEST_PIN"}
	signetCLI(t, append([]string{"key", "generate", "--type", keyType}, tokenFlags...)...)
	csr, cert := filepath.Join(v.dir, name+".csr"), filepath.Join(v.dir, name+".pem")
	email := name + "@example.org"
	signetCLI(t, append([]string{"key", "csr", "--email", email, "--out", csr}, tokenFlags...)...)
	signetCLI(t, "issue", "--home", v.home, "--authority", "vpn", "--csr", csr, "--usage", "client", "--out", cert)
	signetCLI(t, append([]string{"key", "import-cert", "--cert", cert, "--chain"}, tokenFlags...)...)

	objects := tool(t, nil, "pkcs11-tool", "--module", v.module, "--token-label", "vpnuser", "--login", "--pin", v.pin, "--list-objects")
	certID := regexp.MustCompile(`Certificate Object; type = X.509 cert\s+label:\s+` + name + `\s+subject:.*\s+serial:.*\s+ID:\s+([0-9a-f]+)`).FindStringSubmatch(objects)
	keyID := regexp.MustCompile(`Private Key Object; ` + keyObject + `\s+label:\s+` + name + `\s+ID:\s+([0-9a-f]+)`).FindStringSubmatch(objects)
	if certID == nil || keyID == nil || certID[1] != keyID[1] {
		t.Fatalf("%s's certificate is not beside its key (same label and CKA_ID):\n%s", name, objects)
	}
	ids := tool(t, nil, v.ovpn, "--show-pkcs11-ids", v.module)
	m := regexp.MustCompile(`DN:\s+CN=` + regexp.QuoteMeta(email) + `\s+Serial:.*\s+Serialized id:\s+(\S+)`).FindStringSubmatch(ids)
	if m == nil {
		t.Fatalf("openvpn --show-pkcs11-ids does not list %s's certificate:\n%s", name, ids)
	}
	// pkcs11-helper sends the leaf only: the client names its issuers.
	return &vpnClient{cert: cert, module: v.module, p11ID: m[1], pin: v.pin, extra: []string{"--extra-certs", v.chain}}
}

// TestOpenVPN: OpenVPN 2.6 accepts signet's vpn certificates, RSA and
// P-256, as servers and clients with remote-cert-tls on both sides; and
// clients whose keys signet generated on a token (P-256 and RSA), whose
// requests signet made there and whose certificates signet wrote beside
// the keys connect through pkcs11-helper, the PIN given over the
// management interface. Then revocation (the whole CRL as PEM in
// --crl-verify) and a per-purpose anchor (a self-signed vpn authority).
func TestOpenVPN(t *testing.T) {
	v := &vpnCA{ovpn: openvpnPath(t), dir: t.TempDir()}
	v.module, v.pin = kmstest.SoftHSM(t, "vpnuser")
	// The user's machine has no signet home, and gets none.
	userHome := filepath.Join(v.dir, "user")
	t.Setenv("HOME", userHome)
	t.Setenv("XDG_DATA_HOME", "")
	t.Setenv("SIGNET_TEST_PIN", v.pin)
	v.home = filepath.Join(v.dir, "ca")
	signetCLI(t, "init", "--home", v.home)
	signetCLI(t, "authority", "add", "vpn", "--home", v.home, "--purpose", "vpn", "--generate",
		"--allow-dns", "example.org", "--allow-email", "example.org")
	v.root, v.chain = filepath.Join(v.dir, "root.pem"), filepath.Join(v.dir, "vpn-chain.pem")
	if err := os.WriteFile(v.root, []byte(signetCLI(t, "root", "--home", v.home)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(v.chain, []byte(signetCLI(t, "chain", "--home", v.home, "--authority", "vpn")), 0o644); err != nil {
		t.Fatal(err)
	}
	ovpn, root, dir, home := v.ovpn, v.root, v.dir, v.home

	alice := v.tokenClient(t, "alice", "ecdsa-p256", "EC")
	dave := v.tokenClient(t, "dave", "rsa-2048", "RSA")
	if _, err := os.Stat(filepath.Join(userHome, ".local", "share", "signet")); !os.IsNotExist(err) {
		t.Errorf("key commands made a home on the user's machine: %v", err)
	}

	// Software leaves: RSA and P-256, server and client.
	srvRSA, srvRSAKey := softwareLeaf(t, dir, home, "vpn", "vpn.example.org", "server", rsaKey, "--dns", "vpn.example.org")
	srvEC, srvECKey := softwareLeaf(t, dir, home, "vpn", "vpn-ec.example.org", "server", p256Key, "--dns", "vpn-ec.example.org")
	bobPEM, bobKey := softwareLeaf(t, dir, home, "vpn", "bob", "client", rsaKey, "--email", "bob@example.org")
	carolPEM, carolKey := softwareLeaf(t, dir, home, "vpn", "carol", "client", p256Key, "--email", "carol@example.org")
	bob := &vpnClient{cert: bobPEM, key: bobKey, expectServerName: "vpn.example.org"}

	rsaServer := startVPNServer(t, ovpn, "--ca", root, "--cert", srvRSA, "--key", srvRSAKey)
	alice.expectServerName = "vpn.example.org"
	mustConnect(t, ovpn, root, "token client (P-256 on SoftHSM2) to the RSA server", alice, rsaServer)
	alice.promptsMu.Lock()
	prompts := alice.prompts
	alice.promptsMu.Unlock()
	if len(prompts) == 0 || !strings.Contains(prompts[0], "vpnuser") {
		t.Errorf("the PIN was not asked for token vpnuser over the management interface: prompts %q", prompts)
	}
	mustConnect(t, ovpn, root, "RSA client to the RSA server", bob, rsaServer)
	ecServer := startVPNServer(t, ovpn, "--ca", root, "--cert", srvEC, "--key", srvECKey)
	dave.expectServerName = "vpn-ec.example.org"
	mustConnect(t, ovpn, root, "token client (RSA on SoftHSM2) to the P-256 server", dave, ecServer)
	mustConnect(t, ovpn, root, "RSA client to the P-256 server", &vpnClient{cert: bobPEM, key: bobKey, expectServerName: "vpn-ec.example.org"}, ecServer)
	mustConnect(t, ovpn, root, "P-256 client to the P-256 server", &vpnClient{cert: carolPEM, key: carolKey, expectServerName: "vpn-ec.example.org"}, ecServer)

	// A client certificate does not serve: its extended key usage is
	// clientAuth only (OpenSSL's purpose check refuses it before
	// remote-cert-tls would).
	impostor := startVPNServer(t, ovpn, "--ca", root, "--cert", carolPEM, "--key", carolKey)
	if up, log, _ := (&vpnClient{cert: bobPEM, key: bobKey}).connect(t, ovpn, root, impostor); up || !strings.Contains(log, "unsuitable certificate purpose") {
		t.Fatalf("a client certificate served as a VPN server (up %v):\n%s", up, log)
	}

	// The whole CRL, as PEM, in --crl-verify: the revoked token client is
	// refused, an unrevoked client of the same authority still connects.
	t.Run("revoked", func(t *testing.T) {
		crl := filepath.Join(dir, "vpn-crl.pem")
		signetCLI(t, "revoke", "--home", home, serialOf(t, alice.cert), "--reason", "keyCompromise")
		signetCLI(t, "crl", "--home", home, "--authority", "vpn", "--whole", "--pem", "--out", crl)
		crlServer := startVPNServer(t, ovpn, "--ca", root, "--cert", srvRSA, "--key", srvRSAKey, "--crl-verify", crl)
		mustRefuse(t, ovpn, root, "revoked token client", alice, crlServer, "certificate revoked")
		mustConnect(t, ovpn, root, "unrevoked client with the whole CRL", bob, crlServer)
		mustConnect(t, ovpn, root, "unrevoked token client with the whole CRL", &vpnClient{
			module: dave.module, p11ID: dave.p11ID, pin: dave.pin, extra: dave.extra, expectServerName: "vpn.example.org"}, crlServer)
	})

	// A server that trusts a self-signed vpn authority's anchor accepts its
	// clients and refuses client certificates of every other authority of
	// the home: the other vpn authority, tls-client and libvirt.
	t.Run("anchor", func(t *testing.T) {
		signetCLI(t, "authority", "add", "vpn-own", "--home", home, "--purpose", "vpn", "--generate",
			"--self-signed", "--allow-dns", "example.org", "--allow-email", "example.org")
		signetCLI(t, "authority", "add", "clients", "--home", home, "--purpose", "tls-client", "--generate", "--allow-email", "example.org")
		signetCLI(t, "authority", "add", "virt", "--home", home, "--purpose", "libvirt", "--generate", "--allow-dns", "example.org")
		anchor := filepath.Join(dir, "vpn-own-anchor.pem")
		if err := os.WriteFile(anchor, []byte(signetCLI(t, "root", "--home", home, "--authority", "vpn-own")), 0o644); err != nil {
			t.Fatal(err)
		}
		srv, srvKey := softwareLeaf(t, dir, home, "vpn-own", "own.example.org", "server", p256Key, "--dns", "own.example.org")
		erinPEM, erinKey := softwareLeaf(t, dir, home, "vpn-own", "erin", "client", p256Key, "--email", "erin@example.org")
		tlsPEM, tlsKey := softwareLeaf(t, dir, home, "clients", "frank", "client", p256Key, "--email", "frank@example.org")
		virtPEM, virtKey := softwareLeaf(t, dir, home, "virt", "virt.example.org", "client", rsaKey, "--dns", "virt.example.org")
		own := startVPNServer(t, ovpn, "--ca", anchor, "--cert", srv, "--key", srvKey)
		mustConnect(t, ovpn, anchor, "client of the anchored authority", &vpnClient{cert: erinPEM, key: erinKey, expectServerName: "own.example.org"}, own)
		for name, c := range map[string]*vpnClient{
			"client of the other vpn authority": {cert: bobPEM, key: bobKey},
			"tls-client certificate":            {cert: tlsPEM, key: tlsKey},
			"libvirt client certificate":        {cert: virtPEM, key: virtKey},
		} {
			c.expectServerName = "own.example.org"
			mustRefuse(t, ovpn, anchor, name, c, own, "VERIFY ERROR")
		}
	})
}

func mustConnect(t *testing.T, ovpn, ca, what string, c *vpnClient, s *vpnServer) {
	t.Helper()
	if up, log, srv := c.connect(t, ovpn, ca, s); !up {
		t.Fatalf("%s: no tunnel\nclient:\n%s\nserver:\n%s", what, log, srv)
	}
}

// mustRefuse checks that the server refuses the client, saying why (want).
func mustRefuse(t *testing.T, ovpn, ca, what string, c *vpnClient, s *vpnServer, want string) {
	t.Helper()
	up, log, srv := c.connect(t, ovpn, ca, s)
	if up || !strings.Contains(srv, want) {
		t.Fatalf("%s: want the server to refuse with %q, tunnel up %v\nclient:\n%s\nserver:\n%s", what, want, up, log, srv)
	}
}
