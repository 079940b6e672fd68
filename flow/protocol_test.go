package flow_test

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/estuary/flow/go/protocols/capture"
	pf "github.com/estuary/flow/go/protocols/flow"
	"github.com/santhosh-tekuri/jsonschema/v5"

	"source-stripe/catalog"
	"source-stripe/internal/fakestripe"
	"source-stripe/internal/testbin"
	"source-stripe/spec"
)

// TestSpec: Flow sends Spec with an empty config or none, with or without
// a --log.level flag; the answer is protocol 3032023 with the connector's
// config schema and a resource schema that requires a stream.
func TestSpec(t *testing.T) {
	for name, tc := range map[string]struct {
		config json.RawMessage
		args   []string
	}{
		"empty config": {config: json.RawMessage("{}")},
		"log level":    {config: json.RawMessage("{}"), args: []string{"--log.level=debug"}},
		"no config":    {}, // connector-init's protocol check sends {"spec":{"connectorType":"IMAGE"}}
	} {
		t.Run(name, func(t *testing.T) {
			resp, code, c := unary(t, []string{"LOG_LEVEL=warn"}, &capture.Request{Spec: &capture.Request_Spec{ConnectorType: pf.CaptureSpec_IMAGE, ConfigJson: tc.config}}, tc.args...)
			if code != 0 {
				t.Fatalf("exit %d; stderr:\n%s", code, c.Stderr())
			}
			s := resp.Spec
			if s.Protocol != 3032023 {
				t.Errorf("protocol %d", s.Protocol)
			}
			requireSameJSON(t, "configSchema", s.ConfigSchemaJson, spec.ConnectionSpecification)
			if s.DocumentationUrl != spec.DocumentationURL {
				t.Errorf("documentationUrl %q", s.DocumentationUrl)
			}
			if !reflect.DeepEqual(s.ResourcePathPointers, []string{"/stream"}) {
				t.Errorf("resourcePathPointers %v", s.ResourcePathPointers)
			}
			resource := compile(t, s.ResourceConfigSchemaJson)
			for doc, valid := range map[string]bool{
				`{"stream":"charges"}`:                          true,
				`{"stream":"charges","syncMode":"incremental"}`: true, // written for Estuary's Airbyte adapter
				`{}`:                     false,
				`{"stream":"nothing"}`:   false,
				`{"stream":["charges"]}`: false,
			} {
				if err := resource.Validate(decode(t, doc)); (err == nil) != valid {
					t.Errorf("resource config %s: valid=%v, want %v (%v)", doc, err == nil, valid, err)
				}
			}
			for _, l := range c.logs() {
				t.Logf("%s: %s", l.Level, l.Message)
			}
		})
	}
}

// TestDiscover: one binding per stream, keyed by /id, whose schema is the
// stream's with id required (Flow demands that of keys), and which accepts
// documents carrying _meta.
func TestDiscover(t *testing.T) {
	f := newFake(t)
	resp, code, c := unary(t, f.env, &capture.Request{Discover: &capture.Request_Discover{ConnectorType: pf.CaptureSpec_IMAGE, ConfigJson: config()}})
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, c.Stderr())
	}
	cat, err := catalog.Discover()
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Discovered.Bindings) != len(cat.Streams) {
		t.Fatalf("%d bindings for %d streams", len(resp.Discovered.Bindings), len(cat.Streams))
	}
	for i, b := range resp.Discovered.Bindings {
		s := cat.Streams[i]
		if b.RecommendedName != s.Name || !reflect.DeepEqual(b.Key, []string{"/id"}) || !reflect.DeepEqual(b.ResourcePath, []string{s.Name}) || b.Disable {
			t.Errorf("binding %d: %+v", i, b)
		}
		requireSameJSON(t, s.Name+" resourceConfig", b.ResourceConfigJson, []byte(`{"stream":"`+s.Name+`"}`))
		var want map[string]any
		json.Unmarshal(s.JSONSchema, &want)
		want["required"] = []any{"id"}
		wantJSON, _ := json.Marshal(want)
		requireSameJSON(t, s.Name+" documentSchema", b.DocumentSchemaJson, wantJSON)
		schema := compile(t, b.DocumentSchemaJson)
		if err := schema.Validate(decode(t, `{"id":"x","_meta":{"op":"c","uuid":"0b7d8a6e-0000-1000-8000-000000000000"}}`)); err != nil {
			t.Errorf("%s: a document with _meta is invalid: %v", s.Name, err)
		}
		if err := schema.Validate(decode(t, `{"object":"x"}`)); err == nil {
			t.Errorf("%s: a document without its key /id is valid", s.Name)
		}
	}
	if got := f.Requests(); len(got) != 0 {
		t.Errorf("discover sent %d requests to Stripe", len(got))
	}
}

// TestValidate checks the key like check does, and each binding's stream.
func TestValidate(t *testing.T) {
	f := newFake(t)
	validate := func(cfg json.RawMessage, streams ...string) *capture.Request {
		req := &capture.Request{Validate: &capture.Request_Validate{Name: "acmeCo/stripe/source-stripe", ConnectorType: pf.CaptureSpec_IMAGE, ConfigJson: cfg}}
		for _, s := range streams {
			req.Validate.Bindings = append(req.Validate.Bindings, &capture.Request_Validate_Binding{
				ResourceConfigJson: json.RawMessage(`{"stream":"` + s + `"}`), Collection: collection(s)})
		}
		return req
	}
	t.Run("valid", func(t *testing.T) {
		resp, code, c := unary(t, f.env, validate(config(), "charges", "customers"))
		if code != 0 {
			t.Fatalf("exit %d; stderr:\n%s", code, c.Stderr())
		}
		var paths [][]string
		for _, b := range resp.Validated.Bindings {
			paths = append(paths, b.ResourcePath)
		}
		if !reflect.DeepEqual(paths, [][]string{{"charges"}, {"customers"}}) {
			t.Errorf("resource paths %v", paths)
		}
	})
	for name, tc := range map[string]struct {
		req  *capture.Request
		want string
	}{
		"unknown stream":  {validate(config(), "charges", "nothing"), `binding 1: there is no stream "nothing"`},
		"bound twice":     {validate(config(), "charges", "charges"), `stream "charges" is bound twice`},
		"invalid key":     {validate(config("client_secret", "sk_test_wrongwrongwrong"), "charges"), "invalid"},
		"publishable key": {validate(config("client_secret", "pk_test_abc"), "charges"), "publishable key"},
		"no account":      {validate(json.RawMessage(`{"client_secret":"sk_test_fake"}`), "charges"), "account_id"},
	} {
		t.Run(name, func(t *testing.T) {
			_, code, c := unary(t, f.env, tc.req)
			if code == 0 {
				t.Fatal("validate succeeded")
			}
			logs := c.logs()
			last := logs[len(logs)-1]
			if last.Level != "error" || !strings.Contains(last.Message, tc.want) {
				t.Errorf("last log line %+v, want an error saying %q", last, tc.want)
			}
			if strings.Contains(c.Stderr(), "wrongwrongwrong") {
				t.Error("the key appears in the logs")
			}
		})
	}
}

// TestApply has nothing to do, every time.
func TestApply(t *testing.T) {
	for range 2 {
		resp, code, c := unary(t, nil, &capture.Request{Apply: &capture.Request_Apply{Capture: captureSpec(config(), "charges"), Version: "v1"}})
		if code != 0 {
			t.Fatalf("exit %d; stderr:\n%s", code, c.Stderr())
		}
		if resp.Applied == nil || resp.Applied.ActionDescription != "" {
			t.Errorf("applied %+v", resp.Applied)
		}
	}
}

// TestSession: the runtime may send several requests to one process; stdin
// closing ends it with exit 0.
func TestSession(t *testing.T) {
	c := start(t, nil)
	c.send(&capture.Request{Spec: &capture.Request_Spec{ConnectorType: pf.CaptureSpec_IMAGE, ConfigJson: json.RawMessage("{}")}})
	c.send(&capture.Request{Apply: &capture.Request_Apply{Capture: captureSpec(config(), "charges"), Version: "v1"}})
	if code := c.stop(0); code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, c.Stderr())
	}
	if r := c.responses(); len(r) != 2 || r[0].Spec == nil || r[1].Applied == nil {
		t.Errorf("responses %v", r)
	}
}

// TestCommandLineUnchanged: a person who runs the binary with no command
// from a terminal (or with /dev/null as stdin) still gets the usage, and the
// Airbyte commands are untouched.
func TestCommandLineUnchanged(t *testing.T) {
	cmd := exec.Command(testbin.Path(t)) // stdin is /dev/null
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 2 || !strings.Contains(stderr.String(), "Usage:") {
		t.Errorf("no command, stdin /dev/null: %v, stderr %q", err, stderr.String())
	}
	res := testbin.Run(t, 10*time.Second, []string{"STRIPE_API_KEY=" + fakestripe.DefaultKey}, "spec")
	if res.ExitCode != 0 || len(res.Messages) != 1 || res.Messages[0].Spec == nil {
		t.Errorf("spec: exit %d, %s", res.ExitCode, res.Stdout)
	}
}

func requireSameJSON(t *testing.T, what string, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("%s differs:\n got %.400s\nwant %.400s", what, got, want)
	}
}

func compile(t *testing.T, schema []byte) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft7
	if err := c.AddResource("schema.json", bytes.NewReader(schema)); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func decode(t *testing.T, doc string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatal(err)
	}
	return v
}
