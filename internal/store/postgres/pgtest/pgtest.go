// Package pgtest gives tests real PostgreSQL databases: a fresh database
// per test on the server that SIGNET_TEST_POSTGRES names (scripts/test
// starts a throwaway one), or a private server a test may stop and start.
// Without PostgreSQL, tests skip, or fail when SIGNET_REQUIRE_TOOLS=1.
package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"signet/internal/store/postgres/throwaway"
)

// EnvURL names the server, as a postgres:// URL with rights to create databases.
const EnvURL = "SIGNET_TEST_POSTGRES"

func missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("SIGNET_REQUIRE_TOOLS") == "1" {
		t.Fatalf(format+" (SIGNET_REQUIRE_TOOLS=1)", args...)
	}
	t.Skipf(format, args...)
}

// URL returns the URL of a new, empty database on the SIGNET_TEST_POSTGRES
// server, dropped when the test ends, so that tests never share state.
func URL(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(EnvURL)
	if admin == "" {
		missing(t, "%s is not set: no PostgreSQL to test against (./scripts/test starts one)", EnvURL)
	}
	return NewDatabase(t, admin)
}

// NewDatabase creates a database on the server admin points to and returns
// its URL; it is dropped when the test ends.
func NewDatabase(t testing.TB, admin string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, drop, err := throwaway.Create(ctx, admin, "signet_test_")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(drop)
	return u
}

// Server is a private PostgreSQL server in a temporary directory, for tests
// that stop and restart it.
type Server struct {
	Dir  string
	Port int
	bin  string
	as   []string // runuser prefix when running as root
	t    testing.TB
}

// Binary finds a PostgreSQL server program: on PATH, else in Debian's
// versioned directory (/usr/lib/postgresql/N/bin, not on PATH).
func Binary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(matches) == 0 {
		return "", fmt.Errorf("%s not found on PATH or in /usr/lib/postgresql/*/bin", name)
	}
	return matches[len(matches)-1], nil
}

// Start runs initdb in a new directory and starts the server on a free
// loopback port; it is stopped when the test ends. PostgreSQL refuses to
// run as root: as root, the server runs as the user "postgres".
func Start(t testing.TB) *Server {
	t.Helper()
	initdb, err := Binary("initdb")
	if err != nil {
		missing(t, "PostgreSQL: %v", err)
	}
	s := &Server{bin: filepath.Dir(initdb), t: t}
	dir, err := os.MkdirTemp("", "signet-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s.Dir = dir
	if os.Getuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			missing(t, "running as root and there is no user postgres to run PostgreSQL as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		s.as = []string{"runuser", "-u", "postgres", "--"}
	}
	s.run("initdb", "-D", filepath.Join(dir, "data"), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8", "--locale", "C")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s.StartAgain()
	t.Cleanup(func() { s.Stop() })
	return s
}

func (s *Server) run(name string, args ...string) {
	s.t.Helper()
	argv := append(append([]string{}, s.as...), append([]string{filepath.Join(s.bin, name)}, args...)...)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
}

// URL is the admin URL of the server.
func (s *Server) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.Port)
}

// StartAgain starts the (stopped) server and waits until it accepts connections.
func (s *Server) StartAgain() {
	s.t.Helper()
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=%s -c fsync=off -c max_connections=200",
		s.Port, s.Dir)
	s.run("pg_ctl", "-D", filepath.Join(s.Dir, "data"), "-l", filepath.Join(s.Dir, "log"), "-o", opts, "-w", "-t", "60", "start")
}

// Stop stops the server at once (pg_ctl -m fast: connections are cut).
func (s *Server) Stop() {
	argv := append(append([]string{}, s.as...), filepath.Join(s.bin, "pg_ctl"), "-D", filepath.Join(s.Dir, "data"), "-m", "fast", "-w", "stop")
	exec.Command(argv[0], argv[1:]...).Run()
}
