// Package kmstest gives other packages' tests real key stores: a throwaway
// SoftHSM2 token, and the rule for tests that need an external tool (skip
// when it is missing, fail instead when SIGNET_REQUIRE_TOOLS=1, as in CI).
package kmstest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// SoftHSMModule is where Debian's softhsm2 package puts the module.
const SoftHSMModule = "/usr/lib/softhsm/libsofthsm2.so"

// PIN and SOPIN are the PINs of every token SoftHSM makes.
const (
	PIN   = "1234"
	SOPIN = "5678"
)

// RequireTool returns the path of the named program. When it is missing the
// test is skipped, or fails if SIGNET_REQUIRE_TOOLS=1.
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	missing(t, "%s not installed: %v", name, err)
	return ""
}

func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("SIGNET_REQUIRE_TOOLS") == "1" {
		t.Fatalf(format+" (SIGNET_REQUIRE_TOOLS=1)", args...)
	} else {
		t.Skipf(format, args...)
	}
}

// SoftHSM creates an empty token with the given label in a fresh SoftHSM2
// store under t.TempDir and points SOFTHSM2_CONF at it for the rest of the
// test (so the test cannot be parallel). It returns the module path and the
// user PIN.
//
// SoftHSM reads SOFTHSM2_CONF when the module is initialized, once per
// process until it is finalized: close every kms.Manager before the test
// ends, or the next test will still see this store.
func SoftHSM(t testing.TB, label string) (module string, pin string) {
	t.Helper()
	util := RequireTool(t, "softhsm2-util")
	if _, err := os.Stat(SoftHSMModule); err != nil {
		missing(t, "softhsm2 module: %v", err)
	}
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := "directories.tokendir = " + tokens + "\nobjectstore.backend = file\nlog.level = ERROR\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	out, err := exec.Command(util, "--init-token", "--free", "--label", label, "--pin", PIN, "--so-pin", SOPIN).CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	return SoftHSMModule, PIN
}
