package main

import (
	"cmp"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"signet/internal/acme/client"
	"signet/internal/agent"
	"signet/internal/errs"
	"signet/internal/kms"
	"signet/internal/sshclient"
)

// agentFlags are the flags signet agent and signet agent status share.
type agentFlags struct{ config, state string }

func (a *agentFlags) register(f *flags) {
	f.StringVar(&a.config, "config", "", "client configuration `FILE` (TOML) listing the [[certificate]]s to manage; writable by its owner only")
	f.StringVar(&a.state, "state", agent.DefaultStateDir, "state `DIR` (0700; state.json 0600, no secrets)")
}

// load reads the configuration, refusing one others may write.
func (a *agentFlags) load() (*client.Config, error) {
	if a.config == "" {
		return nil, badUsage("--config FILE is required")
	}
	if err := agent.CheckPrivate(a.config, "--config"); err != nil {
		return nil, err
	}
	cfg, err := client.LoadConfig(a.config)
	if err != nil {
		return nil, err
	}
	if len(cfg.Certificates) == 0 && len(cfg.SSHHosts) == 0 {
		return nil, errs.New(errs.Malformed, "%s lists no [[certificate]] and no [[ssh_host]]; add one for the agent to manage", a.config)
	}
	for i, h := range cfg.SSHHosts {
		if h.Name == "" || h.Server == "" || h.HostKey == "" || h.CertFile == "" {
			return nil, errs.New(errs.Malformed, "%s: [[ssh_host]] number %d needs name, server, host_key and cert_file", a.config, i+1)
		}
	}
	if cfg.Server == "" && len(cfg.Certificates) > 0 {
		return nil, errs.New(errs.Malformed, "%s: give server, the ACME directory URL", a.config)
	}
	if found := cfg.Interactive(); len(found) > 0 {
		return nil, errs.New(errs.Malformed, "%s: the agent runs unattended and cannot ask for secrets (%s); give env:VAR or file:PATH (with systemd, LoadCredential= and file:$CREDENTIALS_DIRECTORY/NAME)", a.config, strings.Join(found, ", "))
	}
	return cfg, nil
}

// open makes the agent of cfg: its keys, account and trust.
func (a *agentFlags) open(cfg *client.Config, e *env, dryRun bool) (*agent.Agent, error) {
	kt, err := kms.ParseKeyType(cmp.Or(cfg.KeyType, string(kms.ECDSAP256)))
	if err != nil {
		return nil, err
	}
	o, err := cfg.KeyOptions("", "", "")
	if err != nil {
		return nil, err
	}
	keys := client.Keys{Manager: kms.NewManager(o), Type: kt}
	ag := &agent.Agent{Config: cfg, StateDir: a.state, Keys: keys, Out: e.stdout, DryRun: dryRun}
	if cfg.CABundle != "" {
		if ag.Roots, err = client.ReadPool(cfg.Path(cfg.CABundle)); err != nil {
			keys.Close()
			return nil, err
		}
	}
	if err := sshHosts(ag, cfg); err != nil {
		keys.Close()
		return nil, err
	}
	if len(cfg.Certificates) == 0 {
		return ag, nil // SSH host certificates only: no ACME account
	}
	acct := cmp.Or(cfg.KeyURI(cfg.AccountKey), client.DefaultAccountKey(a.state, cfg.Server))
	signer, err := keys.OpenOrGenerate(e.ctx, acct, "account_key")
	if err != nil {
		keys.Close()
		return nil, err
	}
	hc, err := client.HTTPClient(cfg.Path(cfg.CABundle))
	if err != nil {
		keys.Close()
		return nil, err
	}
	ag.Client = client.New(cfg.Server, hc, signer, "signet-agent/"+version)
	return ag, nil
}

// sshHosts adds the configuration's SSH host certificates to the agent.
func sshHosts(ag *agent.Agent, cfg *client.Config) error {
	var bundle []byte
	if cfg.CABundle != "" {
		b, err := os.ReadFile(cfg.Path(cfg.CABundle))
		if err != nil {
			return errs.Wrap(errs.NotFound, err, "reading ca_bundle")
		}
		bundle = b
	}
	for _, h := range cfg.SSHHosts {
		ag.Others = append(ag.Others, &sshclient.Host{Label: h.Name, Server: h.Server, Bundle: bundle,
			HostKey: cfg.Path(h.HostKey), CertFile: cfg.Path(h.CertFile), Reload: h.Reload})
	}
	return nil
}

func cmdAgent(e *env, args []string) error {
	f := newFlags(e, "agent")
	var a agentFlags
	a.register(f)
	once := f.Bool("once", false, "check every certificate now, renew those due (also those waiting after a failure) and exit")
	dryRun := f.Bool("dry-run", false, "say what is due, change nothing")
	if err := f.parseNone(args); err != nil {
		return err
	}
	cfg, err := a.load()
	if err != nil {
		return err
	}
	if err := agent.OpenStateDir(a.state); err != nil {
		return err
	}
	ag, err := a.open(cfg, e, *dryRun)
	if err != nil {
		return err
	}
	defer func() { ag.Keys.Close() }()
	if *once || *dryRun {
		_, err := ag.Cycle(e.ctx, true)
		return err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		next, err := ag.Cycle(e.ctx, false)
		if err != nil {
			fmt.Fprintf(e.stderr, "signet agent: %v\n", err)
		}
		wait := max(time.Until(next), time.Second)
		fmt.Fprintf(e.stdout, "next check at %s\n", time.Now().Add(wait).UTC().Format(time.RFC3339))
		select {
		case <-e.ctx.Done():
			return nil
		case <-time.After(wait):
		case <-hup:
			// Reload: a configuration that does not load leaves the
			// running one in charge.
			cfg, err := a.load()
			if err == nil {
				var nag *agent.Agent
				if nag, err = a.open(cfg, e, false); err == nil {
					ag.Keys.Close()
					ag = nag
					fmt.Fprintf(e.stdout, "reloaded %s\n", a.config)
				}
			}
			if err != nil {
				fmt.Fprintf(e.stderr, "signet agent: reload refused, keeping the running configuration: %v\n", err)
			}
		}
	}
}

func cmdAgentStatus(e *env, args []string) error {
	f := newFlags(e, "agent status")
	var a agentFlags
	a.register(f)
	asJSON := f.Bool("json", false, "print JSON")
	if err := f.parseNone(args); err != nil {
		return err
	}
	cfg, err := a.load()
	if err != nil {
		return err
	}
	st, err := agent.LoadState(a.state)
	if err != nil {
		return err
	}
	entries := agent.Status(cfg, st)
	if *asJSON {
		return writeJSON(e.stdout, entries)
	}
	for _, en := range entries {
		fmt.Fprintln(e.stdout, en)
	}
	return nil
}
