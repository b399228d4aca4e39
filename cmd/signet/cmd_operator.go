package main

import (
	"fmt"
	"text/tabwriter"

	"signet/internal/audit"
	"signet/internal/store"
)

func cmdOperatorAdd(e *env, args []string) error {
	f := newFlags(e, "operator add")
	role := f.String("role", "", "`ROLE`: viewer, operator or admin")
	asJSON := f.Bool("json", false, "print JSON")
	rest, err := f.parse(args)
	if err != nil {
		return err
	} else if len(rest) != 1 || *role == "" {
		return badUsage("give the operator's NAME and --role viewer|operator|admin")
	}
	h, err := openHome(e, f, unlockNone)
	if err != nil {
		return err
	}
	defer h.Close()
	op, token, ev, err := store.NewOperator(rest[0], *role, "cli")
	if err != nil {
		return err
	}
	if err := h.Store.AddOperator(e.ctx, op, ev); err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, map[string]string{"name": op.Name, "role": op.Role, "token": token})
	}
	fmt.Fprintf(e.stdout, "operator: %s\nrole: %s\ntoken: %s\n(the token is shown only now; use it as 'Authorization: Bearer TOKEN')\n", op.Name, op.Role, token)
	return nil
}

func cmdOperatorList(e *env, args []string) error {
	f := newFlags(e, "operator list")
	asJSON := f.Bool("json", false, "print JSON")
	if rest, err := f.parse(args); err != nil {
		return err
	} else if len(rest) > 0 {
		return badUsage("operator list takes no arguments")
	}
	h, err := openHome(e, f, unlockNone)
	if err != nil {
		return err
	}
	defer h.Close()
	ops, err := h.Store.Operators(e.ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		if ops == nil {
			ops = []store.Operator{}
		}
		return writeJSON(e.stdout, ops)
	}
	if len(ops) == 0 {
		fmt.Fprintln(e.stdout, "no operators; add one with: signet operator add NAME --role viewer|operator|admin")
		return nil
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tROLE\tCREATED\tREMOVED")
	for _, op := range ops {
		removed := "-"
		if op.RemovedAt != nil {
			removed = op.RemovedAt.Format("2006-01-02T15:04:05Z")
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", op.Name, op.Role, op.CreatedAt.Format("2006-01-02T15:04:05Z"), removed)
	}
	return w.Flush()
}

func cmdOperatorRemove(e *env, args []string) error {
	f := newFlags(e, "operator remove")
	asJSON := f.Bool("json", false, "print JSON")
	rest, err := f.parse(args)
	if err != nil {
		return err
	} else if len(rest) != 1 {
		return badUsage("give the operator's NAME")
	}
	h, err := openHome(e, f, unlockNone)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := h.Store.RemoveOperator(e.ctx, rest[0], audit.Event{Actor: "cli"}); err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e.stdout, map[string]string{"name": rest[0], "status": "removed"})
	}
	fmt.Fprintf(e.stdout, "operator %s removed; its token no longer works\n", rest[0])
	return nil
}
