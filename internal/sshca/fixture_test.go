package sshca_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"signet/internal/ca"
	"signet/internal/kms"
	"signet/internal/policy"
	"signet/internal/profile"
	"signet/internal/sshca"
	"signet/internal/store"
	"signet/internal/store/sqlite"
)

// fixture is a durable SQLite store, a key manager and the two CAs over
// them: ca creates SSH authorities, sshca signs for them.
type fixture struct {
	dir   string
	store store.Store
	keys  *kms.Manager
	ca    *ca.CA
	ssh   *sshca.CA
}

func newFixture(t testing.TB, o kms.Options) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	if o.Passphrase == "" {
		pass := filepath.Join(dir, "passphrase")
		if err := os.WriteFile(pass, []byte("correct horse"), 0o600); err != nil {
			t.Fatal(err)
		}
		o.Passphrase = kms.Source("file:" + pass)
	}
	o.Dir = dir
	keys := kms.NewManager(o)
	t.Cleanup(func() { keys.Close() })
	st, err := sqlite.Open(ctx, filepath.Join(dir, "signet.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &fixture{dir: dir, store: st, keys: keys, ca: ca.New(ca.Options{Store: st, Keys: keys}),
		ssh: sshca.New(sshca.Options{Store: st, Keys: keys})}
}

// authority creates an SSH authority whose first key is generated at uri.
func (f *fixture) authority(t testing.TB, name string, p profile.Purpose, uri string, kt kms.KeyType, principals ...string) {
	t.Helper()
	ctx := context.Background()
	if _, err := f.keys.Generate(ctx, uri, kt); err != nil {
		t.Fatal(err)
	}
	_, err := f.ca.CreateAuthority(ctx, ca.AuthoritySpec{Name: name, Purpose: p, KeyURI: uri,
		Policy: policy.Policy{Principals: principals}, DefaultValidity: time.Hour, MaxValidity: 24 * time.Hour, Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
}

// sshKey writes a new Ed25519 key pair as OpenSSH files (PATH, PATH.pub)
// and returns its public key.
func sshKey(t testing.TB, path string) ssh.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	spub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".pub", ssh.MarshalAuthorizedKey(spub), 0o644); err != nil {
		t.Fatal(err)
	}
	return spub
}

// sign issues a certificate and writes it to file.
func (f *fixture) sign(t testing.TB, c *sshca.CA, req sshca.Request, file string) *sshca.Issued {
	t.Helper()
	if c == nil {
		c = f.ssh
	}
	if req.Actor == "" {
		req.Actor = "test"
	}
	iss, err := c.Issue(context.Background(), req)
	if err != nil {
		t.Fatalf("sign %v for %s: %v", req.Principals, req.Authority, err)
	}
	if file != "" {
		if err := os.WriteFile(file, iss.Line(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return iss
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
