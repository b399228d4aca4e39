package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"signet/internal/audit"
	"signet/internal/errs"
	"signet/internal/home"
)

func cmdAuditVerify(e *env, args []string) error {
	f := newFlags(e, "audit verify")
	asJSON := f.Bool("json", false, "print JSON")
	checkpoint := f.String("checkpoint", "", "prove the log holds the signed checkpoints in `FILE` (one or more, appended) or at an http(s) URL (serve's /audit/checkpoint)")
	key := f.String("key", "", "the audit key to check checkpoints with: its verifier key as `signet audit key` prints it, or a `FILE` holding it (default: the home's "+home.AuditKeyFile+")")
	if err := f.parseNone(args); err != nil {
		return err
	}
	if *key != "" && *checkpoint == "" {
		return badUsage("--key checks checkpoints: give --checkpoint FILE|URL too")
	}
	h, err := openHomeToRead(e, f)
	if err != nil {
		return err
	}
	defer h.Close()
	var kept []audit.Checkpoint
	if *checkpoint != "" {
		if kept, err = readCheckpoints(e.ctx, h.Dir, *checkpoint, *key); err != nil {
			return err
		}
	}
	rep, err := audit.Verify(e.ctx, h.Store, kept...)
	if *asJSON {
		out := map[string]any{"intact": rep.Intact(), "events": rep.Events, "certificates": rep.Certificates, "head": rep.HeadHex(),
			"rows": rep.Rows, "rows_from_seq": rep.StateFrom, "checkpoints": rep.Checkpoints,
			"restores": rep.Restores, "checkpoints_lost_to_restore": rep.LostToRestore}
		if !rep.Intact() {
			out["broken_seq"], out["reason"] = rep.BrokenSeq, rep.Reason
			out["row_problems"], out["row_problem_count"] = rep.RowProblems, rep.RowProblemCount
		}
		if werr := writeJSON(e.stdout, out); werr != nil {
			return werr
		}
	} else if err == nil {
		fmt.Fprintf(e.stdout, "audit log intact: %d events, %d certificates checked, head %s\n", rep.Events, rep.Certificates, rep.HeadHex())
		fmt.Fprintf(e.stdout, "rows: %d match the newest event that records each\n", rep.Rows)
		if rep.StateFrom > 1 {
			fmt.Fprintf(e.stdout, "rows are checked from event %d (state.baseline) on: this home was made before rows were hashed\n", rep.StateFrom)
		}
		for _, seq := range rep.Restores {
			fmt.Fprintf(e.stdout, "RESTORED from a backup at event %d: events the live log had after the backup's head are gone; confirm the restore with the operators\n", seq)
		}
		if rep.LostToRestore > 0 {
			fmt.Fprintf(e.stdout, "%d checkpoints given name events a restore dropped\n", rep.LostToRestore)
		}
		if len(kept) > 0 {
			newest := slices.MaxFunc(kept, func(a, b audit.Checkpoint) int { return cmp.Compare(a.Seq, b.Seq) })
			fmt.Fprintf(e.stdout, "the log holds all %d checkpoints given, the newest at event %d (%s); events after it are not covered by them\n",
				rep.Checkpoints, newest.Seq, newest.Time.Format(time.RFC3339))
		}
	}
	if err != nil {
		for _, p := range rep.RowProblems {
			fmt.Fprintf(e.stderr, "row: %s\n", p)
		}
		if more := rep.RowProblemCount - int64(len(rep.RowProblems)); more > 0 {
			fmt.Fprintf(e.stderr, "row: ... and %d more\n", more)
		}
		return errs.Wrap(errs.KindOf(err), err, "audit log BROKEN")
	}
	return nil
}

// readCheckpoints reads the signed checkpoints of a file or URL and checks
// their signatures with vkey, or the home's audit key.
func readCheckpoints(ctx context.Context, dir, from, vkey string) ([]audit.Checkpoint, error) {
	switch {
	case vkey == "":
		b, err := os.ReadFile(filepath.Join(dir, home.AuditKeyFile))
		if err != nil {
			return nil, errs.Wrap(errs.NotFound, err, "this home has no %s (made before audit keys: run signet audit key once): give --key VKEY", home.AuditKeyFile)
		}
		vkey = strings.TrimSpace(string(b))
	case !strings.Contains(vkey, "+"): // not a verifier key: a file holding one
		b, err := os.ReadFile(vkey)
		if err != nil {
			return nil, errs.Wrap(errs.NotFound, err, "--key %s is neither a verifier key (signet audit key prints it) nor a file holding one", vkey)
		}
		vkey = strings.TrimSpace(string(b))
	}
	var b []byte
	var err error
	if strings.HasPrefix(from, "http://") || strings.HasPrefix(from, "https://") {
		b, err = fetchCheckpoint(ctx, from)
	} else if b, err = os.ReadFile(from); err != nil {
		err = errs.Wrap(errs.NotFound, err, "read checkpoints from %s", from)
	}
	if err != nil {
		return nil, err
	}
	var kept []audit.Checkpoint
	for i, msg := range audit.SplitNotes(b) {
		c, err := audit.OpenCheckpoint(msg, vkey)
		if err != nil {
			return nil, errs.Wrap(errs.KindOf(err), err, "checkpoint %d of %s", i+1, from)
		}
		kept = append(kept, c)
	}
	if len(kept) == 0 {
		return nil, errs.New(errs.Malformed, "%s holds no checkpoint: give a file serve appended to (the home's %s) or its /audit/checkpoint URL", from, home.CheckpointsFile)
	}
	return kept, nil
}

// fetchCheckpoint gets the latest checkpoint from serve's plain listener.
func fetchCheckpoint(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, errs.Wrap(errs.Malformed, err, "checkpoint URL %s", url)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "fetch the checkpoint")
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, errs.Wrap(errs.Unavailable, err, "fetch the checkpoint")
	}
	if resp.StatusCode != http.StatusOK {
		return nil, errs.New(errs.Unavailable, "fetch the checkpoint from %s: %s", url, resp.Status)
	}
	return b, nil
}

// cmdAuditKey prints the verifier key of the audit key that signs
// checkpoints, generating the key in a home made before there was one.
func cmdAuditKey(e *env, args []string) error {
	f := newFlags(e, "audit key")
	var u unlockFlags
	u.register(f)
	if err := f.parseNone(args); err != nil {
		return err
	}
	h, err := openHome(e, f, u.unlock())
	if err != nil {
		return err
	}
	defer h.Close()
	_, vkey, err := h.AuditKey(e.ctx, "cli")
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, vkey)
	return nil
}
