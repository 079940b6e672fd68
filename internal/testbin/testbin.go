// Package testbin builds the connector binary once per test process and runs
// it as the platforms do: a command, flags, files, environment; it parses
// what comes out on stdout as Airbyte messages.
package testbin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"source-stripe/protocol"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Path builds the connector (once) and returns the binary's path.
func Path(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "source-stripe-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "source-stripe")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		cmd.Dir = moduleRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = &buildError{out: string(out), err: err}
		}
	})
	if buildErr != nil {
		t.Fatalf("building the connector: %v", buildErr)
	}
	return binPath
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// BaseEnv is the environment every test run of the connector starts from:
// a minimal one, with the request budget lifted (0: unpaced until the fake
// answers 429) so that tests do not wait on a test key's 20 requests/s. A
// test of pacing sets SOURCE_STRIPE_REQUESTS_PER_SECOND itself; later
// values win.
func BaseEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), "SOURCE_STRIPE_REQUESTS_PER_SECOND=0"}
}

// Result is one run of the connector.
type Result struct {
	Messages []protocol.Message
	Stdout   []byte
	Stderr   string
	ExitCode int
}

// Run runs the connector with args and env (added to a minimal
// environment) and waits for it, at most timeout.
func Run(t testing.TB, timeout time.Duration, env []string, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, Path(t), args...)
	cmd.Env = append(BaseEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("source-stripe %v did not finish within %s; stderr:\n%s", args, timeout, stderr.String())
	}
	res := Result{Stdout: stdout.Bytes(), Stderr: stderr.String()}
	if exit, ok := err.(*exec.ExitError); ok {
		res.ExitCode = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("running source-stripe: %v", err)
	}
	res.Messages = ParseMessages(t, stdout.Bytes())
	return res
}

// ParseMessages parses stdout strictly: every line must be one Airbyte
// message with a known type.
func ParseMessages(t testing.TB, stdout []byte) []protocol.Message {
	t.Helper()
	var msgs []protocol.Message
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for n := 1; sc.Scan(); n++ {
		var m protocol.Message
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("stdout line %d is not an Airbyte message (%v): %.300s", n, err, sc.Bytes())
		}
		switch m.Type {
		case protocol.TypeRecord, protocol.TypeState, protocol.TypeLog, protocol.TypeSpec,
			protocol.TypeConnectionStatus, protocol.TypeCatalog, protocol.TypeTrace:
		default:
			t.Fatalf("stdout line %d has unknown type %q", n, m.Type)
		}
		msgs = append(msgs, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return msgs
}

// Of returns the messages of one type.
func (r Result) Of(typ protocol.Type) []protocol.Message {
	var out []protocol.Message
	for _, m := range r.Messages {
		if m.Type == typ {
			out = append(out, m)
		}
	}
	return out
}

// Records returns the records of stream (all streams when stream is "").
func (r Result) Records(stream string) []protocol.Record {
	var out []protocol.Record
	for _, m := range r.Messages {
		if m.Type == protocol.TypeRecord && (stream == "" || m.Record.Stream == stream) {
			out = append(out, *m.Record)
		}
	}
	return out
}

// Errors returns the TRACE ERROR payloads.
func (r Result) Errors() []protocol.TraceErr {
	var out []protocol.TraceErr
	for _, m := range r.Messages {
		if m.Type == protocol.TypeTrace && m.Trace.Type == protocol.TraceError {
			out = append(out, *m.Trace.Error)
		}
	}
	return out
}

// Statuses returns each stream's STREAM_STATUS sequence.
func (r Result) Statuses() map[string][]string {
	out := map[string][]string{}
	for _, m := range r.Messages {
		if m.Type == protocol.TypeTrace && m.Trace.Type == protocol.TraceStreamStatus {
			name := m.Trace.StreamStatus.StreamDescriptor.Name
			out[name] = append(out[name], m.Trace.StreamStatus.Status)
		}
	}
	return out
}

// States returns the STATE payloads in order.
func (r Result) States() []protocol.State {
	var out []protocol.State
	for _, m := range r.Messages {
		if m.Type == protocol.TypeState {
			out = append(out, *m.State)
		}
	}
	return out
}

// FinalState returns the last STATE of every stream as an array of
// AirbyteStateMessage, ready to pass back with --state.
func (r Result) FinalState(t testing.TB) []byte {
	t.Helper()
	last := map[string]protocol.State{}
	var order []string
	for _, s := range r.States() {
		name := s.Stream.StreamDescriptor.Name
		if _, ok := last[name]; !ok {
			order = append(order, name)
		}
		last[name] = s
	}
	var msgs []protocol.State
	for _, name := range order {
		msgs = append(msgs, last[name])
	}
	b, err := json.Marshal(msgs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// WriteFile writes data to a file in t's temp dir and returns its path.
func WriteFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Config is a connector config as JSON: account_id and client_secret, with
// fields added or replaced (a nil value removes a field).
func Config(accountID, key string, fields map[string]any) []byte {
	cfg := map[string]any{"account_id": accountID, "client_secret": key}
	for k, v := range fields {
		if v == nil {
			delete(cfg, k)
		} else {
			cfg[k] = v
		}
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		panic(err) // a test passed a value JSON cannot hold
	}
	return raw
}
