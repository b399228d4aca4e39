package kmstest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// recorder stands in for a test to see which way RequireTool goes.
type recorder struct {
	testing.TB
	skipped, failed string
}

func (r *recorder) Helper()                      {}
func (r *recorder) Skipf(f string, args ...any)  { r.skipped = fmt.Sprintf(f, args...) }
func (r *recorder) Fatalf(f string, args ...any) { r.failed = fmt.Sprintf(f, args...) }

func TestRequireTool(t *testing.T) {
	t.Setenv("SIGNET_REQUIRE_TOOLS", "")
	r := &recorder{}
	if RequireTool(r, "signet-no-such-tool") != "" || r.skipped == "" || r.failed != "" {
		t.Errorf("missing tool without SIGNET_REQUIRE_TOOLS: %+v", r)
	}
	t.Setenv("SIGNET_REQUIRE_TOOLS", "1")
	r = &recorder{}
	if RequireTool(r, "signet-no-such-tool") != "" || r.failed == "" || r.skipped != "" {
		t.Errorf("missing tool with SIGNET_REQUIRE_TOOLS=1: %+v", r)
	}
	r = &recorder{}
	if p := RequireTool(r, "sh"); p == "" || r.failed != "" || r.skipped != "" {
		t.Errorf("RequireTool(sh) = %q, %+v", p, r)
	}
}

func TestSoftHSM(t *testing.T) {
	module, pin := SoftHSM(t, "kmstest")
	if module == "" || pin != PIN {
		t.Fatalf("SoftHSM = %q, %q", module, pin)
	}
	conf := os.Getenv("SOFTHSM2_CONF")
	if filepath.Dir(conf) == "" || !filepath.IsAbs(conf) {
		t.Fatalf("SOFTHSM2_CONF = %q", conf)
	}
	out, err := exec.Command(RequireTool(t, "softhsm2-util"), "--show-slots").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(string(out), "Label:            kmstest") {
		t.Errorf("token not in the new store:\n%s", out)
	}
}
