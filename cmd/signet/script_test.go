package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	_ "modernc.org/sqlite"

	"signet/internal/kms/kmstest"
)

func TestMain(m *testing.M) {
	// Tests run many serves at once: each takes a free port for metrics
	// unless it names one.
	os.Setenv("SIGNET_METRICS_LISTEN", "127.0.0.1:0")
	testscript.Main(m, map[string]func(){
		"signet": func() {
			// As main does: scripts stop a background serve with kill -INT.
			ctx, stop := signal.NotifyContext(context.Background(), stopSignals...)
			code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
			stop()
			os.Exit(code)
		},
	})
}

// TestScripts drives the real signet binary through the scripts in
// testdata/script, checking its output with openssl, certtool, pkcs11-tool
// and softhsm2-util.
func TestScripts(t *testing.T) {
	tools := map[string]string{}
	for _, tool := range []string{"openssl", "certtool", "softhsm2-util", "pkcs11-tool", "ssh-keygen"} {
		tools[tool] = kmstest.RequireTool(t, tool)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Condition:           scriptCondition,
		Setup: func(e *testscript.Env) error {
			conf := filepath.Join(e.WorkDir, "softhsm2.conf")
			tokens := filepath.Join(e.WorkDir, "tokens")
			if err := os.Mkdir(tokens, 0o700); err != nil {
				return err
			}
			if err := os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
				return err
			}
			e.Setenv("SOFTHSM2_CONF", conf)
			e.Setenv("SOFTHSM", "/usr/lib/softhsm/libsofthsm2.so")
			e.Setenv("SIGNET_METRICS_LISTEN", "127.0.0.1:0")
			e.Setenv("PORT", strconv.Itoa(freePort(t)))
			e.Setenv("HTTPPORT", strconv.Itoa(freePort(t)))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"noclearkeys":    cmdNoClearKeys,
			"sqlexec":        cmdSQLExec,
			"sqlquery":       cmdSQLQuery,
			"certserial":     cmdCertSerial,
			"certurl":        cmdCertURL,
			"fetch":          cmdFetch,
			"waithttp":       cmdWaitHTTP,
			"waitcrl":        cmdWaitCRL,
			"pgdb":           cmdPGDatabase,
			"libvirtd":       cmdLibvirtd,
			"dnsserver":      cmdDNSServer,
			"freeport":       cmdFreePort,
			"tlsfingerprint": cmdTLSFingerprint,
			"flipbyte":       cmdFlipByte,
			"agekeygen":      cmdAgeKeygen,
		},
	})
}

// freePort is a loopback TCP port nothing listens on now, and that no
// other call in this process has returned.
func freePort(t *testing.T) int {
	// Below Linux's ephemeral range (32768 up), which the kernel also
	// hands out to outgoing connections: a port found free there can be
	// taken by any connection on the machine before serve binds it. The
	// ports are taken in turn from a random start, so that two tests
	// running at once are never handed the same one.
	for range 100 {
		p := 10000 + int(nextPort.Add(1))%22000
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		ln.Close()
		return p
	}
	t.Fatal("no free port below 32000 in 100 tries")
	return 0
}

var nextPort = func() *atomic.Int64 {
	var n atomic.Int64
	n.Store(rand.Int64N(22000))
	return &n
}()

// cmdNoClearKeys fails if any file under DIR holds a private key in the
// clear, or a key file is readable by others. serve's TLS key
// (server-tls.key), a node key like any web server's, is clear by design:
// it must be 0600.
func cmdNoClearKeys(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: noclearkeys DIR")
	}
	var found []string
	err := filepath.WalkDir(ts.MkAbs(args[0]), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if d.Name() == "server-tls.key" {
			if info, _ := d.Info(); info.Mode().Perm() != 0o600 {
				found = append(found, path+": node key file mode "+info.Mode().Perm().String())
			}
			return nil
		}
		for rest := data; ; {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			if strings.Contains(b.Type, "PRIVATE KEY") && b.Type != "ENCRYPTED PRIVATE KEY" {
				found = append(found, path+": PEM "+b.Type)
			}
			if b.Type == "ENCRYPTED PRIVATE KEY" {
				if info, _ := d.Info(); info.Mode().Perm()&0o077 != 0 {
					found = append(found, path+": key file mode "+info.Mode().Perm().String())
				}
			}
		}
		for _, marker := range []string{"-----BEGIN PRIVATE KEY", "-----BEGIN EC PRIVATE KEY", "-----BEGIN RSA PRIVATE KEY", "-----BEGIN OPENSSH PRIVATE KEY"} {
			if bytes.Contains(data, []byte(marker)) {
				found = append(found, path+": contains "+marker)
			}
		}
		return nil
	})
	if err != nil {
		ts.Fatalf("%v", err)
	}
	if len(found) > 0 {
		ts.Fatalf("private keys in the clear:\n%s", strings.Join(found, "\n"))
	}
}

// cmdSQLExec runs one SQL statement on a SQLite file, the way someone
// tampering with the database would.
func cmdSQLExec(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: sqlexec DB SQL")
	}
	db, err := sql.Open("sqlite", ts.MkAbs(args[0]))
	if err != nil {
		ts.Fatalf("%v", err)
	}
	defer db.Close()
	res, err := db.Exec(args[1])
	if err == nil {
		var n int64
		dml := strings.HasPrefix(strings.ToUpper(args[1]), "UPDATE") || strings.HasPrefix(strings.ToUpper(args[1]), "DELETE")
		if n, err = res.RowsAffected(); err == nil && n == 0 && dml {
			ts.Fatalf("%s: no row changed", args[1])
		}
	}
	if (err != nil) != neg {
		ts.Fatalf("sqlexec: %v", err)
	}
}

// cmdSQLQuery runs one query on a SQLite file and prints its rows to
// stdout, one a line, columns separated by tabs.
func cmdSQLQuery(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: sqlquery DB SQL")
	}
	db, err := sql.Open("sqlite", ts.MkAbs(args[0]))
	ts.Check(err)
	defer db.Close()
	rows, err := db.Query(args[1])
	ts.Check(err)
	defer rows.Close()
	cols, err := rows.Columns()
	ts.Check(err)
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		ts.Check(rows.Scan(ptrs...))
		line := make([]string, len(vals))
		for i, v := range vals {
			line[i] = v.String
		}
		ts.Stdout().Write([]byte(strings.Join(line, "\t") + "\n"))
	}
	ts.Check(rows.Err())
}

// cmdCertSerial sets VAR to the serial (lowercase hex) of the first
// certificate in a PEM file, so scripts can name what they issued.
func cmdCertSerial(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: certserial VAR FILE")
	}
	ts.Setenv(args[0], hex.EncodeToString(firstCert(ts, args[1]).SerialNumber.Bytes()))
}
