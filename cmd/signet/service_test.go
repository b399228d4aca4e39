package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"signet/internal/kms/kmstest"
)

// TestSystemdUnit checks contrib/systemd/signet.service with systemd's own
// checker, its ExecStart pointed at an executable that exists here: any
// complaint (an unknown or misspelt setting) fails the test.
func TestSystemdUnit(t *testing.T) {
	verifyUnit(t, "signet.service", "Type=notify", "ExecStart=/usr/local/bin/signet serve", "ExecReload=/bin/kill -HUP $MAINPID",
		"ProtectSystem=strict", "ReadWritePaths=/var/lib/signet /var/lib/softhsm", "NoNewPrivileges=yes", "LoadCredential=pin:")
}

// TestSystemdAgentUnit checks contrib/systemd/signet-agent.service as
// TestSystemdUnit does signet.service.
func TestSystemdAgentUnit(t *testing.T) {
	verifyUnit(t, "signet-agent.service", "ExecStart=/usr/local/bin/signet agent --config /etc/signet-agent/agent.toml", "ExecReload=/bin/kill -HUP $MAINPID",
		"AmbientCapabilities=CAP_NET_BIND_SERVICE", "ProtectSystem=strict", "LoadCredential=pin:", "StateDirectoryMode=0700")
}

func verifyUnit(t *testing.T, name string, wants ...string) {
	t.Helper()
	analyze := kmstest.RequireTool(t, "systemd-analyze")
	unit, err := os.ReadFile("../../contrib/systemd/" + name)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range wants {
		if !strings.Contains(string(unit), "\n"+want) {
			t.Errorf("the unit has no line %q", want)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/signet", self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestSystemdCheckUnits checks contrib/systemd/signet-check.service and
// its timer with systemd's own checker, as TestSystemdUnit does.
func TestSystemdCheckUnits(t *testing.T) {
	analyze := kmstest.RequireTool(t, "systemd-analyze")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range []string{"signet-check.service", "signet-check.timer"} {
		unit, err := os.ReadFile("../../contrib/systemd/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if name == "signet-check.service" && !strings.Contains(string(unit), "\nExecStart=/usr/local/bin/signet check --all ") {
			t.Errorf("%s does not run signet check --all", name)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/signet", self)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := exec.Command(analyze, "verify", filepath.Join(dir, "signet-check.service"), filepath.Join(dir, "signet-check.timer")).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
