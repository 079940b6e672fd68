// Command source-stripe is a Stripe source connector that speaks the Airbyte
// protocol: spec, check, discover and read, with Airbyte messages as JSON
// lines on stdout and human-readable logs on stderr.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/pflag"

	"source-stripe/commands"
	"source-stripe/flow"
	"source-stripe/protocol"
	"source-stripe/streams"
)

const usage = `source-stripe reads a Stripe account and writes Airbyte protocol messages to stdout.

Usage:
  source-stripe spec
  source-stripe check    --config FILE
  source-stripe discover --config FILE
  source-stripe read     --config FILE [--catalog FILE] [--state FILE] [--streams a,b] [--follow]
  source-stripe --version

Without --config, the key comes from STRIPE_API_KEY and every other setting
takes its default. STRIPE_API_BASE replaces https://api.stripe.com (for tests
and stripe-mock). Run "source-stripe COMMAND --help" for a command's flags.

Started with no command and stdin a pipe (as Estuary Flow's runtime starts
it), it speaks Flow's capture protocol on stdin and stdout instead.
`

// version is stamped by the build: go build -ldflags "-X main.version=0.1.0".
var version = "dev"

func main() {
	// SOURCE_STRIPE_CPUPROFILE writes a CPU profile of the run, for
	// performance work (see README, Benchmarks).
	if path := os.Getenv("SOURCE_STRIPE_CPUPROFILE"); path != "" {
		if f, err := os.Create(path); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				code := dispatch()
				pprof.StopCPUProfile()
				f.Close()
				os.Exit(code)
			}
		}
	}
	os.Exit(dispatch())
}

func dispatch() int {
	if flow.Invoked(os.Args[1:], os.Stdin) {
		return runFlow(os.Args[1:])
	}
	return run(os.Args[1:], os.Stdout, os.Stderr)
}

// runFlow serves Estuary Flow's runtime until it closes stdin or sends
// SIGTERM; errors are logged on stderr, where Flow reads them.
func runFlow(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return flow.Run(ctx, flow.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Args: args})
}

// run dispatches a command and is the one place where an error becomes a
// TRACE ERROR and an exit code.
func run(args []string, stdout, stderr io.Writer) int {
	out := protocol.NewWriter(stdout)
	env := commands.Env{Out: out, Stderr: stderr, Getenv: os.Getenv}
	if len(args) == 1 && args[0] == "--version" {
		fmt.Fprintln(stdout, "source-stripe", version)
		return 0
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	command := args[0]
	flags := pflag.NewFlagSet(command, pflag.ContinueOnError)
	flags.SetOutput(stderr)
	configPath := flags.String("config", "", "path to the config JSON (its schema: source-stripe spec); default: STRIPE_API_KEY from the environment")
	var opts commands.ReadOptions
	switch command {
	case "spec":
	case "check", "discover":
	case "read":
		flags.StringVar(&opts.CatalogPath, "catalog", "", "path to the configured catalog JSON; default: every stream in its best sync mode")
		flags.StringVar(&opts.StatePath, "state", "", "path to the state JSON of an earlier read, to resume from it")
		flags.StringSliceVar(&opts.Streams, "streams", nil, "read only these streams (comma-separated)")
		flags.BoolVar(&opts.Follow, "follow", false, "after reading, keep emitting changes as Stripe reports them, until SIGINT/SIGTERM")
		flags.StringVar(&opts.PollInterval, "poll-interval", "", "how often to read new events with --follow, e.g. 500ms (default: the config's poll_interval, 500ms)")
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", command, usage)
		return 2
	}
	if command == "spec" {
		flags.MarkHidden("config")
	}
	flags.Usage = func() {
		fmt.Fprintf(stderr, "Usage of source-stripe %s:\n%s", command, flags.FlagUsages())
	}
	if err := flags.Parse(args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		out.TraceError(protocol.ConfigErrorf("%s: %v", command, err))
		return 1
	}

	var err error
	switch command {
	case "spec":
		err = commands.Spec(env)
	case "check":
		err = commands.Check(ctx, env, *configPath)
	case "discover":
		err = commands.Discover(env, *configPath)
	case "read":
		opts.ConfigPath = *configPath
		err = commands.Read(ctx, env, opts)
	}
	if err == nil {
		return 0
	}
	// Failed streams were reported one by one as they failed.
	if !errors.Is(err, streams.ErrStreamsFailed) {
		out.TraceError(err)
	}
	fmt.Fprintf(stderr, "source-stripe %s: %s\n", command, out.Mask(err.Error()))
	return 1
}
