// Package flow speaks Estuary Flow's capture protocol, so that the
// connector's image runs in Flow natively, without Estuary's Airbyte adapter.
//
// Flow's runtime starts the image's entrypoint with no command and exchanges
// newline-delimited JSON (the protobuf JSON mapping of capture.proto,
// protocol 3032023) on stdin and stdout: Spec, Discover, Validate and Apply
// are answered one by one; Open starts a capture that runs until stdin ends
// or SIGTERM. The capture is the Airbyte read pipeline in follow mode: the
// Airbyte messages it writes are translated into Captured documents and
// Checkpoints (translate.go). Logs go to stderr as JSON lines.
//
// The messages are plain structs with the protocol's JSON names rather than
// Flow's generated Go package, whose module brings a large dependency tree
// (gRPC, etcd, Gazette, cloud SDKs) into a small static binary; the tests
// hold these structs to the generated package.
package flow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"source-stripe/protocol"
	"source-stripe/spec"
	"source-stripe/stripeapi"
)

// Env holds what a Flow session takes from the process.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads the environment (FLOW_RUNTIME_CODEC, LOG_LEVEL;
	// STRIPE_API_BASE for tests).
	Getenv func(string) string
	// Args are the process's arguments: Flow may pass --log.level.
	Args []string
}

// Invoked reports whether the process was started the way Flow's runtime
// starts a connector: no command (only --log.level flags), and stdin not a
// terminal or /dev/null, which is how a person starts it by mistake (they
// get the usage instead).
func Invoked(args []string, stdin *os.File) bool {
	for i := 0; i < len(args); i++ {
		switch {
		case strings.HasPrefix(args[i], "--log.level="):
		case args[i] == "--log.level" && i+1 < len(args):
			i++
		default:
			return false
		}
	}
	info, err := stdin.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice == 0
}

// Run serves the runtime's requests until stdin ends, and returns the exit
// code. An error is logged on stderr, where Flow shows the last log line of
// a connector that fails, and exits 1.
func Run(ctx context.Context, env Env) int {
	level, err := logLevel(env)
	if err != nil {
		newLogger(env.Stderr, levelError).log(levelError, err.Error())
		return 1
	}
	s := &session{env: env, log: newLogger(env.Stderr, level), out: newResponseWriter(env.Stdout)}
	if err := s.serve(ctx); err != nil {
		s.log.log(levelError, err.Error())
		return 1
	}
	return 0
}

// logLevel is the level of --log.level, else of LOG_LEVEL (which Flow's
// runtime sets in the connector's container), else info.
func logLevel(env Env) (string, error) {
	for i, a := range env.Args {
		v, ok := strings.CutPrefix(a, "--log.level=")
		if !ok && a == "--log.level" && i+1 < len(env.Args) {
			v, ok = env.Args[i+1], true
		}
		if ok {
			return parseLogLevel(v)
		}
	}
	if l, err := parseLogLevel(env.Getenv("LOG_LEVEL")); err == nil {
		return l, nil
	}
	return levelInfo, nil
}

// session is one run of the connector under Flow.
type session struct {
	env Env
	log *logger
	out *responseWriter
}

func (s *session) serve(ctx context.Context) error {
	if codec := s.env.Getenv("FLOW_RUNTIME_CODEC"); codec != "" && codec != "json" {
		return fmt.Errorf("FLOW_RUNTIME_CODEC is %q, but this connector speaks only the json codec (label the image FLOW_RUNTIME_CODEC=json)", codec)
	}
	dec := json.NewDecoder(s.env.Stdin)
	for {
		var req Request
		if err := dec.Decode(&req); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("reading a request from stdin: %w", err)
		}
		var resp Response
		var err error
		switch {
		case req.Spec != nil:
			resp.Spec, err = Spec()
		case req.Discover != nil:
			resp.Discovered, err = Discover(req.Discover.Config)
		case req.Validate != nil:
			resp.Validated, err = s.validate(ctx, req.Validate)
		case req.Apply != nil:
			resp.Applied = &Applied{} // nothing to set up in Stripe
		case req.Open != nil:
			// The capture runs until the runtime stops it: it is the
			// last request of a session.
			return s.capture(ctx, req.Open, dec)
		case req.Acknowledge != nil:
			return errors.New("protocol error: Acknowledge before Open")
		default:
			return errors.New("protocol error: a request with none of spec, discover, validate, apply, open")
		}
		if err != nil {
			return err
		}
		if err := s.out.write(resp); err != nil {
			return err
		}
	}
}

// validate checks the config and the key as check does, and each binding's
// stream.
func (s *session) validate(ctx context.Context, req *ValidateRequest) (*Validated, error) {
	cfg, err := s.config(req.Config)
	if err != nil {
		return nil, err
	}
	out := &Validated{}
	var problems []string
	seen := map[string]bool{}
	for i, b := range req.Bindings {
		r, _, err := parseResource(b.ResourceConfig)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("binding %d: %s", i, protocol.AsError(err).Message))
		case seen[r.Stream]:
			problems = append(problems, fmt.Sprintf("binding %d: stream %q is bound twice", i, r.Stream))
		}
		seen[r.Stream] = true
		out.Bindings = append(out.Bindings, ValidatedBinding{ResourcePath: []string{r.Stream}})
	}
	if len(problems) > 0 {
		return nil, protocol.ConfigErrorf("%s", strings.Join(problems, "; "))
	}
	client, err := s.client(cfg)
	if err != nil {
		return nil, err
	}
	acct, err := client.ResolveAccount(ctx, cfg.AccountID)
	if err != nil {
		return nil, err
	}
	if acct.Warning != "" {
		s.log.warn(acct.Warning)
	}
	return out, nil
}

// config parses a config and registers its key as a secret.
func (s *session) config(raw json.RawMessage) (spec.Config, error) {
	cfg, err := spec.Parse(raw)
	if err != nil {
		return cfg, err
	}
	mask := protocol.NewWriter(io.Discard)
	mask.Redact(cfg.APIKey)
	s.log.mask = mask.Mask
	return cfg, nil
}

func (s *session) client(cfg spec.Config) (*stripeapi.Client, error) {
	opts, err := stripeapi.OptionsFromEnv(s.env.Getenv, stripeapi.Options{APIKey: cfg.APIKey, Warn: s.log.warn}, cfg.MaxRequestsPerSecond)
	if err != nil {
		return nil, err
	}
	return stripeapi.New(opts), nil
}
