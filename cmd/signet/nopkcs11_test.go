//go:build !cgo

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A signet built without cgo says so in version and help, and a token key
// gets one clear error and makes no home. scripts/test runs this with
// CGO_ENABLED=0.
func TestNoPKCS11(t *testing.T) {
	const says = "built without PKCS#11 (CGO_ENABLED=0)"
	for _, args := range [][]string{{"version"}, {"--help"}} {
		if out := signetCLI(t, args...); !strings.Contains(out, says) {
			t.Errorf("signet %s does not say %q:\n%s", args[0], says, out)
		}
	}

	dir := filepath.Join(t.TempDir(), "home")
	t.Setenv("SIGNET_TEST_PIN", "1234")
	var out, errOut lockedBuffer
	code := run(context.Background(), []string{"init", "--home", dir, "--key", "pkcs11:token=ca;object=root",
		"--module", "/usr/lib/softhsm/libsofthsm2.so", "--pin", "env:SIGNET_TEST_PIN"}, nil, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "this signet was built without PKCS#11 (CGO_ENABLED=0), so it cannot use pkcs11:token=ca") {
		t.Errorf("init with a token key: exit %d, stderr:\n%s", code, errOut.String())
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("init with a token key left %s behind (stat: %v)", dir, err)
	}
}
