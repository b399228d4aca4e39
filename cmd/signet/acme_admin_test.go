package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/acme"
)

// TestACMECannotMintAdmins: the escalation issue 11 reports. Any valid
// certificate of the admin authority is an administrator; served over
// ACME, an anonymous account that passed one http-01 challenge got one,
// and with it POST /api/v1/authorities/default/certificates for any name.
// The admin authority never serves ACME now, whether it is the one of an
// older home (every authority served ACME then; opening the home turns it
// off) or one given to serve --admin-authority while its setting is on
// (serve says so in its log and /health).
func TestACMECannotMintAdmins(t *testing.T) {
	for _, tc := range []struct {
		name   string
		byFlag bool
	}{{"older home", false}, {"--admin-authority", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "home")
			cli := homeCLI(t, dir)
			cli("init")
			cli("authority", "add", "admins", "--purpose", "tls-client", "--generate", "--allow-dns", "*")
			// ACME on for admins, as every authority of an older home has
			// it; a home made before the setting existed has no column
			// for it, and serves ACME for every authority anyway.
			db, err := sql.Open("sqlite", filepath.Join(dir, "signet.db"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec("UPDATE authorities SET acme = 1 WHERE name = 'admins'"); err != nil && !strings.Contains(err.Error(), "no such column") {
				t.Fatal(err)
			}
			db.Close()
			adminFlag := []string{"--admin-authority", "admins"}
			if !tc.byFlag {
				adminFlag = nil
				toml := filepath.Join(dir, "signet.toml")
				b, err := os.ReadFile(toml)
				if err != nil {
					t.Fatal(err)
				}
				b = bytes.Replace(b, []byte("[server]\n"), []byte("[server]\nadmin_authority = 'admins'\n"), 1)
				if err := os.WriteFile(toml, b, 0o600); err != nil {
					t.Fatal(err)
				}
			}

			// http-01 answers from the test.
			var tokens sync.Map
			hl, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if ka, ok := tokens.Load(strings.TrimPrefix(r.URL.Path, "/.well-known/acme-challenge/")); ok {
					fmt.Fprint(w, ka)
					return
				}
				http.NotFound(w, r)
			})}
			go hs.Serve(hl)
			t.Cleanup(func() { hs.Close() })

			addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			ctx, cancel := context.WithCancel(context.Background())
			var stdout, stderr lockedBuffer
			exited := make(chan int, 1)
			go func() {
				exited <- run(ctx, append([]string{"serve", "--home", dir, "--listen", addr, "--acme-resolver", startDNS(t),
					"--acme-http-port", strconv.Itoa(hl.Addr().(*net.TCPAddr).Port), "--acme-tls-port", strconv.Itoa(freePort(t)),
					"--http-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t))}, adminFlag...), nil, &stdout, &stderr)
			}()
			t.Cleanup(func() {
				cancel()
				select {
				case <-exited:
				case <-time.After(15 * time.Second):
					t.Error("serve did not stop")
				}
			})
			client := waitHealthy(t, dir, addr, exited, &stderr)
			roots := client.Transport.(*http.Transport).TLSClientConfig.RootCAs

			// What the server says about it.
			resp, err := client.Get("https://" + addr + "/health")
			if err != nil {
				t.Fatal(err)
			}
			var health struct{ Warnings []string }
			json.NewDecoder(resp.Body).Decode(&health)
			resp.Body.Close()
			want := `turned ACME off for authority \"admins\": it is the admin authority`
			if tc.byFlag {
				want = `authority \"admins\" has ACME on but is the admin authority`
				if len(health.Warnings) != 1 || !strings.Contains(health.Warnings[0], `"admins" has ACME on`) {
					t.Errorf("/health warnings %q; want one about admins", health.Warnings)
				}
			}
			if !strings.Contains(stderr.String(), want) {
				t.Errorf("serve's log does not say %s:\n%s", want, stderr.String())
			}
			if out := stdout.String(); strings.Contains(out, "/acme/admins/directory") || !strings.Contains(out, "/acme/default/directory") {
				t.Errorf("serve should list the ACME directory of default and not that of admins:\n%s", out)
			}

			// The attack: an ACME account orders a client certificate from
			// the admin authority...
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			cl := &acme.Client{Key: key, DirectoryURL: "https://" + addr + "/acme/admins/directory", HTTPClient: client}
			_, err = cl.Register(ctx, &acme.Account{}, acme.AcceptTOS)
			if ae, ok := err.(*acme.Error); ok && ae.StatusCode == http.StatusNotFound {
				return // the admin authority does not serve ACME
			}
			if err != nil {
				t.Fatalf("register at the admin authority: %v; want 404", err)
			}
			o, err := cl.AuthorizeOrder(ctx, acme.DomainIDs("mallory.example.org"))
			if err != nil {
				t.Fatalf("order at the admin authority: %v", err)
			}
			for _, u := range o.AuthzURLs {
				z, err := cl.GetAuthorization(ctx, u)
				if err != nil {
					t.Fatal(err)
				}
				for _, ch := range z.Challenges {
					if ch.Type == "http-01" {
						ka, _ := cl.HTTP01ChallengeResponse(ch.Token)
						tokens.Store(ch.Token, ka)
						if _, err := cl.Accept(ctx, ch); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			if o, err = cl.WaitOrder(ctx, o.URI); err != nil {
				t.Fatal(err)
			}
			certKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{DNSNames: []string{"mallory.example.org"}}, certKey)
			chain, _, err := cl.CreateOrderCert(ctx, o.FinalizeURL, der, true)
			if err != nil {
				t.Fatalf("finalize at the admin authority: %v", err)
			}
			// ...and uses it as an administrator.
			admin := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots,
				Certificates: []tls.Certificate{{Certificate: chain, PrivateKey: certKey}}}}}
			csrKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, csrKey)
			body, _ := json.Marshal(map[string]any{"csr": string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr})), "dns": []string{"www.victim.example"}})
			resp, err = admin.Post("https://"+addr+"/api/v1/authorities/default/certificates", "application/json", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			t.Fatalf("the admin authority served ACME: an ACME account got an admin certificate, and POST /api/v1/authorities/default/certificates answered it %d", resp.StatusCode)
		})
	}
}
