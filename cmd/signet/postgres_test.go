package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"signet/internal/store/postgres/pgtest"
	"signet/internal/store/postgres/throwaway"
)

// scriptCondition answers [postgres]: a server to test against, or
// SIGNET_REQUIRE_TOOLS=1 (then pgdb fails rather than the script skipping);
// and [libvirt] (haveLibvirt).
func scriptCondition(cond string) (bool, error) {
	switch cond {
	case "postgres":
		return os.Getenv(pgtest.EnvURL) != "" || os.Getenv("SIGNET_REQUIRE_TOOLS") == "1", nil
	case "libvirt":
		return haveLibvirt(), nil
	}
	return false, fmt.Errorf("unknown condition %q", cond)
}

// cmdPGDatabase sets VAR to the URL of a new, empty database on the
// SIGNET_TEST_POSTGRES server, dropped when the script ends.
func cmdPGDatabase(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: pgdb VAR")
	}
	admin := os.Getenv(pgtest.EnvURL)
	if admin == "" {
		ts.Fatalf("%s is not set: no PostgreSQL (./scripts/test starts one)", pgtest.EnvURL)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u, drop, err := throwaway.Create(ctx, admin, "signet_script_")
	if err != nil {
		ts.Fatalf("%v", err)
	}
	ts.Defer(drop)
	ts.Setenv(args[0], u)
}
