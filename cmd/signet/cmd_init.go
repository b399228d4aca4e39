package main

import (
	"fmt"
	"io"

	"signet/internal/home"
	"signet/internal/kms"
)

func cmdInit(e *env, args []string) error {
	f := newFlags(e, "init")
	var u unlockFlags
	u.register(f)
	rootKey := f.String("key", "", "existing key `URI` for the root (pkcs11:token=T;object=O); default: generate an encrypted software key")
	authKey := f.String("authority-key", "", "existing key `URI` for the authority \"default\"; default: generate one beside the root key")
	keyType := f.String("key-type", "ecdsa-p256", "`TYPE` of generated keys: ecdsa-p256, ecdsa-p384, ed25519, rsa-2048, rsa-3072, rsa-4096")
	cn := f.String("cn", "", "root certificate common `NAME`")
	org := f.String("org", "", "root certificate `ORGANIZATION`")
	baseURL := f.String("base-url", "", "`URL` prefix certificates name for CRLs, OCSP and issuers (default http://<http_listen>, i.e. http://127.0.0.1:8080)")
	httpListen := f.String("http-listen", "", "`ADDR` of serve's plain-HTTP listener for CRLs and OCSP, written to signet.toml (default 127.0.0.1:8080)")
	storeURL := f.String("store", "", "store `URL` written to signet.toml: postgres://USER@HOST/DB for a database several nodes share (default: signet.db in the home)")
	adminToken := f.String("admin-token", "", "`SOURCE` of the admin token for /api/v1 (env:VAR or file:PATH, at least 32 characters); default: a random one in the home's admin-token file")
	asJSON := f.Bool("json", false, "print the result as JSON")
	if err := f.parseNone(args); err != nil {
		return err
	}
	kt, err := kms.ParseKeyType(*keyType)
	if err != nil {
		return err
	}
	h, rep, err := home.Init(e.ctx, f.homeDir(), home.InitOptions{
		RootKey: *rootKey, AuthorityKey: *authKey, KeyType: kt, Unlock: u.unlock(),
		CommonName: *cn, Organization: *org, BaseURL: *baseURL, HTTPListen: *httpListen, Store: *storeURL, AdminToken: *adminToken, Actor: "cli",
	})
	if err != nil {
		return err
	}
	defer h.Close()
	if *asJSON {
		return writeJSON(e.stdout, rep)
	}
	printReport(e.stdout, rep)
	return nil
}

func printReport(w io.Writer, rep *home.Report) {
	fmt.Fprintf(w, "created signet home %s\n", rep.Dir)
	fmt.Fprintf(w, "  configuration   %s\n", rep.Config)
	fmt.Fprintf(w, "  database        %s\n", rep.Database)
	fmt.Fprintf(w, "  root key        %s\n", rep.RootKey)
	fmt.Fprintf(w, "  authority key   %s (authority \"default\", purpose tls-server)\n", rep.AuthorityKey)
	fmt.Fprintf(w, "  admin token     %s\n", rep.AdminTokenFile)
	if rep.TrialPassphrase != "" {
		fmt.Fprintf(w, `
WARNING: the software CA keys are encrypted with a random passphrase stored
in %s, beside them. That is fine for trying signet out, not for real use.
For production, generate the keys on a PKCS#11 token:
    signet key generate --uri 'pkcs11:token=ca;object=root' --module /path/to/module.so --type ecdsa-p256 --pin prompt
    signet init --home NEWHOME --key 'pkcs11:token=ca;object=root' --module /path/to/module.so --pin prompt
or at least keep the passphrase elsewhere (--passphrase env:VAR or prompt).
`, rep.TrialPassphrase)
	}
}
