// Package flow_test runs the built connector as Estuary Flow's runtime
// does: no command, requests on stdin, responses on stdout, each message
// built and decoded with Flow's own Go protocol package.
package flow_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/estuary/flow/go/protocols/capture"
	pf "github.com/estuary/flow/go/protocols/flow"

	"source-stripe/internal/fakestripe"
	"source-stripe/internal/testbin"
)

// connector is the binary started the way the runtime starts the image.
type connector struct {
	*testbin.Lines
	t *testing.T

	mu      sync.Mutex
	resps   []*capture.Response
	bad     error // the first line that is not a valid response
	partial bool  // stdout ended inside a line
	killed  bool
}

// start starts the connector with env (added to a minimal environment)
// and args; the test's cleanup kills it if it still runs.
func start(t *testing.T, env []string, args ...string) *connector {
	t.Helper()
	c := &connector{t: t}
	c.Lines = testbin.StartLines(t, env, args, true, func(line []byte, whole bool) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if !whole {
			c.partial = true
			return
		}
		resp, err := decodeResponse(line)
		switch {
		case err != nil && c.bad == nil:
			c.bad = fmt.Errorf("stdout line %d: %v: %.300s", len(c.resps)+1, err, line)
		case err == nil:
			c.resps = append(c.resps, resp)
		}
	})
	c.Progress = func() string {
		var docs, checkpoints int
		rs := c.responses()
		for _, r := range rs {
			switch {
			case r.Captured != nil:
				docs++
			case r.Checkpoint != nil:
				checkpoints++
			}
		}
		return fmt.Sprintf("%d responses, %d documents, %d checkpoints", len(rs), docs, checkpoints)
	}
	return c
}

// send writes one request on stdin.
func (c *connector) send(req *capture.Request) {
	c.t.Helper()
	line, err := encodeRequest(req)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.Stdin.Write(append(line, '\n')); err != nil {
		c.t.Fatalf("writing a request: %v; stderr:\n%s", err, c.Stderr())
	}
}

// responses returns the responses so far.
func (c *connector) responses() []*capture.Response {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*capture.Response(nil), c.resps...)
}

// waitFor waits until cond holds for the responses so far, at most timeout.
func (c *connector) waitFor(timeout time.Duration, what string, cond func([]*capture.Response) bool) {
	c.t.Helper()
	c.WaitFor(timeout, what, func() bool {
		c.mu.Lock()
		bad := c.bad
		c.mu.Unlock()
		if bad != nil {
			c.t.Fatal(bad)
		}
		return cond(c.responses())
	})
}

// stop ends the capture the way the runtime does, by closing stdin (or by
// sig), and returns the exit code.
func (c *connector) stop(sig syscall.Signal) int {
	c.t.Helper()
	if sig == 0 {
		c.Stdin.Close()
	} else {
		c.Cmd.Process.Signal(sig)
	}
	return c.wait(10 * time.Second)
}

// kill crashes the connector.
func (c *connector) kill() {
	c.mu.Lock()
	c.killed = true
	c.mu.Unlock()
	c.Cmd.Process.Kill()
	<-c.Done()
}

// wait waits for the exit, at most timeout, and returns the exit code. Every
// line of stdout must have been a valid response.
func (c *connector) wait(timeout time.Duration) int {
	c.t.Helper()
	code := c.Exit(timeout, "the end of the capture")
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bad != nil {
		c.t.Fatal(c.bad)
	}
	if c.partial && !c.killed {
		c.t.Fatalf("stdout ends inside a line; stderr:\n%s", c.Stderr())
	}
	return code
}

// logs returns stderr's lines, each checked to be a log line Flow reads.
func (c *connector) logs() []logLine {
	c.t.Helper()
	var out []logLine
	for _, line := range strings.Split(strings.TrimSpace(c.Stderr()), "\n") {
		if line == "" {
			continue
		}
		l, err := decodeLog([]byte(line))
		if err != nil {
			c.t.Fatalf("stderr line is not a Flow log line (%v): %s", err, line)
		}
		out = append(out, l)
	}
	return out
}

// unary runs one request in its own process, as the runtime runs Spec,
// Discover, Validate and Apply, and returns the one response (nil when the
// connector failed) and the exit code.
func unary(t *testing.T, env []string, req *capture.Request, args ...string) (*capture.Response, int, *connector) {
	t.Helper()
	c := start(t, env, args...)
	c.send(req)
	code := c.stop(0)
	resps := c.responses()
	switch {
	case code == 0 && len(resps) != 1:
		t.Fatalf("want exactly one response, got %d; stderr:\n%s", len(resps), c.Stderr())
	case code != 0 && len(resps) != 0:
		t.Fatalf("a failed request answered %d responses", len(resps))
	case code != 0:
		return nil, code, c
	}
	return resps[0], code, c
}

// fake is a seeded fake Stripe and what the connector needs to reach it.
type fake struct {
	*fakestripe.Server
	env []string
}

func newFake(t *testing.T, opts ...fakestripe.Option) *fake {
	t.Helper()
	s := fakestripe.New(opts...)
	t.Cleanup(s.Close)
	s.Seed(fakestripe.DefaultDataset())
	return &fake{Server: s, env: []string{"STRIPE_API_BASE=" + s.URL(), "FLOW_RUNTIME_CODEC=json"}}
}

// config is a capture config for the fake's account, polling events fast.
func config(fields ...string) json.RawMessage {
	cfg := map[string]any{"account_id": fakestripe.DefaultAccountID, "client_secret": fakestripe.DefaultKey, "poll_interval": "100ms"}
	for i := 0; i+1 < len(fields); i += 2 {
		cfg[fields[i]] = fields[i+1]
	}
	b, _ := json.Marshal(cfg)
	return b
}

// captureSpec is a published capture of streams, one binding each, with the
// state keys Flow gives bindings that were never backfilled again.
func captureSpec(cfg json.RawMessage, streams ...string) *pf.CaptureSpec {
	spec := &pf.CaptureSpec{Name: "acmeCo/stripe/source-stripe", ConnectorType: pf.CaptureSpec_IMAGE, ConfigJson: cfg}
	for _, s := range streams {
		spec.Bindings = append(spec.Bindings, &pf.CaptureSpec_Binding{
			ResourceConfigJson: json.RawMessage(fmt.Sprintf(`{"stream":%q}`, s)),
			ResourcePath:       []string{s},
			Collection:         collection(s),
			StateKey:           s,
		})
	}
	return spec
}

// collection is the collection a binding of stream captures into.
func collection(stream string) pf.CollectionSpec {
	return pf.CollectionSpec{
		Name: pf.Collection("acmeCo/stripe/" + stream),
		Key:  []string{"/id"},
		Projections: []pf.Projection{{
			Ptr: "/id", Field: "id", IsPrimaryKey: true,
			Inference: pf.Inference{Types: []string{"string"}, Exists: pf.Inference_MUST, String_: &pf.Inference_String{}},
		}},
		WriteSchemaJson: json.RawMessage(`{"type":"object","required":["id"],"properties":{"id":{"type":"string"}}}`),
	}
}

// open is an Open of spec for the shard owning [begin, end], resuming from
// state (nil: the first run).
func open(spec *pf.CaptureSpec, begin, end uint32, state json.RawMessage) *capture.Request {
	return &capture.Request{Open: &capture.Request_Open{
		Capture: spec,
		Version: "v1",
		Range:   &pf.RangeSpec{KeyBegin: begin, KeyEnd: end, RClockBegin: 0, RClockEnd: 0xffffffff},
		StateJson: func() json.RawMessage {
			if state == nil {
				return json.RawMessage("{}")
			}
			return state
		}(),
	}}
}
