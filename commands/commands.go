// Package commands runs the Airbyte protocol's commands: spec, check,
// discover and read. main parses flags and calls one of them; every error
// they return reaches the user through main's one TRACE ERROR.
package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"source-stripe/catalog"
	"source-stripe/protocol"
	"source-stripe/spec"
	"source-stripe/state"
	"source-stripe/streams"
	"source-stripe/stripeapi"
)

// Env holds what commands take from the process.
type Env struct {
	Out *protocol.Writer
	// Stderr is for people: progress and summaries.
	Stderr io.Writer
	// Getenv reads the environment (STRIPE_API_KEY, STRIPE_API_BASE).
	Getenv func(string) string
}

// Spec prints the SPEC message.
func Spec(env Env) error {
	return env.Out.Write(protocol.Message{Type: protocol.TypeSpec, Spec: spec.Spec()})
}

// LoadConfig reads --config, or builds a config from STRIPE_API_KEY when no
// file is given.
func LoadConfig(env Env, path string) (spec.Config, error) {
	var cfg spec.Config
	var err error
	if path != "" {
		cfg, err = spec.Load(path)
	} else if key := env.Getenv("STRIPE_API_KEY"); key != "" {
		cfg, err = spec.FromEnvironment(key)
	} else {
		err = protocol.ConfigErrorf("no config: pass --config FILE, or set STRIPE_API_KEY to a Stripe secret key")
	}
	if err == nil {
		env.Out.Redact(cfg.APIKey)
	}
	return cfg, err
}

func newClient(env Env, cfg spec.Config) (*stripeapi.Client, error) {
	opts, err := stripeapi.OptionsFromEnv(env.Getenv, stripeapi.Options{
		APIKey: cfg.APIKey,
		Warn:   func(msg string) { _ = env.Out.Log(protocol.LevelWarn, msg) },
	}, cfg.MaxRequestsPerSecond)
	if err != nil {
		return nil, err
	}
	return stripeapi.New(opts), nil
}

// Check validates the config and the key, and prints exactly one
// CONNECTION_STATUS. A problem the user can fix is FAILED with a nil error.
func Check(ctx context.Context, env Env, configPath string) error {
	failed := func(err error) error {
		return env.Out.Write(protocol.Message{Type: protocol.TypeConnectionStatus, ConnectionStatus: &protocol.ConnectionStatus{
			Status: protocol.StatusFailed, Message: protocol.AsError(err).Message,
		}})
	}
	cfg, err := LoadConfig(env, configPath)
	if err != nil {
		return failed(err)
	}
	client, err := newClient(env, cfg)
	if err != nil {
		return failed(err)
	}
	acct, err := client.ResolveAccount(ctx, cfg.AccountID)
	if err != nil {
		return failed(err)
	}
	if acct.Warning != "" {
		_ = env.Out.Log(protocol.LevelWarn, acct.Warning)
	}
	return env.Out.Write(protocol.Message{Type: protocol.TypeConnectionStatus, ConnectionStatus: &protocol.ConnectionStatus{Status: protocol.StatusSucceeded}})
}

// Discover prints the catalog. It validates the config, but does not call
// Stripe: the streams and their schemas do not depend on the account.
func Discover(env Env, configPath string) error {
	if _, err := LoadConfig(env, configPath); err != nil {
		return err
	}
	cat, err := catalog.Discover()
	if err != nil {
		return err
	}
	return env.Out.Write(protocol.Message{Type: protocol.TypeCatalog, Catalog: cat})
}

// ReadOptions are read's inputs.
type ReadOptions struct {
	ConfigPath  string
	CatalogPath string // empty: every stream in its best sync mode
	StatePath   string
	Streams     []string // narrows the catalog
	// Follow keeps reading changes until interrupted (also set by the
	// config's follow field).
	Follow bool
	// PollInterval overrides the config's poll_interval when set.
	PollInterval string
}

// Read reads the configured streams.
func Read(ctx context.Context, env Env, opts ReadOptions) error {
	cfg, err := LoadConfig(env, opts.ConfigPath)
	if err != nil {
		return err
	}
	cc, err := configuredCatalog(opts)
	if err != nil {
		return err
	}
	states := state.Set{}
	if opts.StatePath != "" {
		raw, err := os.ReadFile(opts.StatePath)
		if err != nil {
			return protocol.ConfigErrorf("cannot read the state file %q: %v", opts.StatePath, errors.Unwrap(err))
		}
		if states, err = state.Parse(raw); err != nil {
			return err
		}
	}
	jobs, err := catalog.Plan(cc, states)
	if err != nil {
		return err
	}
	for name := range states {
		if _, ok := streams.Lookup(name); !ok {
			_ = env.Out.Log(protocol.LevelWarn, fmt.Sprintf("ignoring the saved state of stream %q, which this connector does not have", name))
		}
	}

	client, err := newClient(env, cfg)
	if err != nil {
		return err
	}
	acct, err := client.ResolveAccount(ctx, cfg.AccountID)
	if err != nil {
		return err
	}
	if acct.Warning != "" {
		_ = env.Out.Log(protocol.LevelWarn, acct.Warning)
	}
	counter := &countingLister{Lister: acct.Client}
	if opts.PollInterval != "" {
		if cfg.PollInterval, err = spec.ParsePollInterval(opts.PollInterval); err != nil {
			return err
		}
	}
	reader := &streams.Reader{
		Client:       counter,
		Out:          env.Out,
		StartDate:    cfg.StartDate,
		Lookback:     time.Duration(cfg.LookbackWindowDays) * 24 * time.Hour,
		Follow:       opts.Follow || cfg.Follow,
		PollInterval: cfg.PollInterval,
	}
	started := time.Now()
	err = reader.Read(ctx, jobs)
	if errors.Is(err, streams.ErrInterrupted) {
		// Stopped by the platform or the user: every stream emitted a final
		// STATE covering what it read, so this is not a failure.
		_ = env.Out.Log(protocol.LevelWarn, err.Error())
		err = nil
	}
	if ferr := env.Out.Flush(); err == nil {
		err = ferr
	}
	elapsed := time.Since(started)
	records := env.Out.Records()
	fmt.Fprintf(env.Stderr, "source-stripe: read %d records from %d streams with %d requests in %s (%.0f records/s)\n",
		records, len(jobs), counter.requests.Load(), elapsed.Round(time.Millisecond), float64(records)/max(elapsed.Seconds(), 1e-3))
	return err
}

func configuredCatalog(opts ReadOptions) (*protocol.ConfiguredCatalog, error) {
	if opts.CatalogPath == "" {
		return catalog.Default(opts.Streams)
	}
	raw, err := os.ReadFile(opts.CatalogPath)
	if err != nil {
		return nil, protocol.ConfigErrorf("cannot read the catalog file %q: %v", opts.CatalogPath, errors.Unwrap(err))
	}
	cc, err := catalog.ParseConfigured(raw)
	if err != nil {
		return nil, err
	}
	return catalog.Narrow(cc, opts.Streams)
}
