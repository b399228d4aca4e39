package server_test

import (
	"context"
	"path/filepath"
	"testing"

	"signet/internal/ca"
	"signet/internal/kms"
	"signet/internal/lint"
	"signet/internal/store/sqlite"
)

// fixture is a real CA for the server's tests: a SQLite store, encrypted
// software keys in a temporary directory and the lint gate.
type fixture struct {
	keys  *kms.Manager
	store *sqlite.Store
	ca    *ca.CA
}

// newFixture makes the CA and generates one key of type typ for each uri.
func newFixture(t testing.TB, typ kms.KeyType, uris ...string) fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	t.Setenv("TEST_PASSPHRASE", "a long test passphrase")
	keys := kms.NewManager(kms.Options{Dir: dir, Passphrase: kms.Source("env:TEST_PASSPHRASE")})
	t.Cleanup(func() { keys.Close() })
	st, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, uri := range uris {
		if _, err := keys.Generate(ctx, uri, typ); err != nil {
			t.Fatal(err)
		}
	}
	gate, err := lint.New()
	if err != nil {
		t.Fatal(err)
	}
	return fixture{keys: keys, store: st, ca: ca.New(ca.Options{Store: st, Keys: keys, Lint: gate})}
}
