package main

import (
	"fmt"
	"slices"

	"signet/internal/home"
)

// cmdStoreMigrate copies a home's SQLite store into an empty PostgreSQL
// database, so that several nodes can share it.
func cmdStoreMigrate(e *env, args []string) error {
	f := newFlags(e, "store migrate")
	from := f.String("from", "", "source store: `sqlite:PATH`")
	to := f.String("to", "", "target: `postgres://USER@HOST/DB` (an empty database; password in PGPASSWORD or ~/.pgpass)")
	asJSON := f.Bool("json", false, "print the result as JSON")
	if err := f.parseNone(args); err != nil {
		return err
	}
	if *from == "" || *to == "" {
		return badUsage("--from sqlite:PATH and --to postgres://... are required")
	}
	rep, err := home.MigrateStore(e.ctx, *from, *to)
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, rep)
	}
	tables := make([]string, 0, len(rep.Rows))
	for t := range rep.Rows {
		tables = append(tables, t)
	}
	slices.Sort(tables)
	fmt.Fprintf(e.stdout, "copied %s to %s\n", rep.From, rep.To)
	for _, t := range tables {
		fmt.Fprintf(e.stdout, "  %-20s %d rows\n", t, rep.Rows[t])
	}
	fmt.Fprintf(e.stdout, "audit log intact on the target: %d events, head %s\n", rep.Events, rep.Head)
	fmt.Fprintf(e.stdout, "next: set store = %q in each node's signet.toml\n", rep.To)
	return nil
}
