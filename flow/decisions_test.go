package flow

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"source-stripe/streams"
)

func TestOperation(t *testing.T) {
	lookup := func(name string) streams.Stream {
		s, ok := streams.Lookup(name)
		if !ok {
			t.Fatalf("no stream %s", name)
		}
		return s
	}
	for name, tc := range map[string]struct {
		stream, data, want string
	}{
		"backfilled":                     {"customers", `{"id":"cus_1","created":100,"updated":100}`, "c"},
		"changed":                        {"customers", `{"id":"cus_1","created":100,"updated":160}`, "u"},
		"deleted":                        {"customers", `{"id":"cus_1","created":100,"updated":160,"is_deleted":true}`, "d"},
		"not deleted":                    {"customers", `{"id":"cus_1","created":100,"updated":160,"is_deleted":false}`, "u"},
		"invoice item, by its date":      {"invoice_items", `{"id":"ii_1","date":100,"updated":100}`, "c"},
		"invoice item changed":           {"invoice_items", `{"id":"ii_1","date":100,"updated":130}`, "u"},
		"child backfilled, older parent": {"subscription_items", `{"id":"si_1","created":120,"updated":100}`, "c"},
		"child without a creation time":  {"bank_accounts", `{"id":"ba_1","updated":100}`, "u"},
		"stream without updated":         {"events", `{"id":"evt_1","created":100}`, "c"},
		"created not a number":           {"customers", `{"id":"cus_1","created":"x","updated":100}`, "u"},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := operation(lookup(tc.stream), []byte(tc.data))
			if err != nil || got != tc.want {
				t.Errorf("operation = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := operation(lookup("customers"), []byte(`[1]`)); err == nil {
		t.Error("an array is a record")
	}
}

func TestWithMeta(t *testing.T) {
	for in, want := range map[string]string{
		`{"id":"a"}`:  `{"_meta":{"op":"c"},"id":"a"}`,
		`{}`:          `{"_meta":{"op":"c"}}`,
		`{ "id":"a"}`: `{"_meta":{"op":"c"},"id":"a"}`,
		`{ }`:         `{"_meta":{"op":"c"}}`,
	} {
		if got := string(withMeta([]byte(in), "c")); got != want || !json.Valid([]byte(got)) {
			t.Errorf("withMeta(%s) = %s, want %s", in, got, want)
		}
	}
}

// TestMergeDiff: merging the patch into the previous state gives the next
// state exactly, dropped members included.
func TestMergeDiff(t *testing.T) {
	for name, tc := range map[string]struct{ prev, next string }{
		"first state":       {`null`, `{"state_version":2,"created":100}`},
		"cursor moves":      {`{"state_version":2,"created":100}`, `{"state_version":2,"created":200}`},
		"unchanged":         {`{"state_version":2,"created":100}`, `{"state_version":2,"created":100}`},
		"events start":      {`{"state_version":2,"created":100}`, `{"state_version":2,"created":100,"events":{"since":90,"following":false}}`},
		"seen ids rotate":   {`{"events":{"since":90,"following":true,"seen":{"evt_1":80,"evt_2":85}}}`, `{"events":{"since":120,"following":true,"seen":{"evt_3":110}}}`},
		"seen emptied":      {`{"events":{"since":90,"following":true,"seen":{"evt_1":80}}}`, `{"events":{"since":200,"following":true}}`},
		"member vanishes":   {`{"created":100,"events":{"since":90}}`, `{"created":100}`},
		"object for scalar": {`{"events":5}`, `{"events":{"since":1}}`},
	} {
		t.Run(name, func(t *testing.T) {
			prev, _ := decodeJSON([]byte(tc.prev))
			next, _ := decodeJSON([]byte(tc.next))
			patch := mergeDiff(prev, next)
			// Through JSON, as the runtime sees it.
			raw, _ := json.Marshal(patch)
			var p, got, want any
			json.Unmarshal(raw, &p)
			json.Unmarshal([]byte(tc.prev), &got)
			json.Unmarshal([]byte(tc.next), &want)
			if got = ApplyMergePatch(got, p); !reflect.DeepEqual(got, want) {
				t.Errorf("prev %s + patch %s = %v, want %s", tc.prev, raw, got, tc.next)
			}
		})
	}
}

// ApplyMergePatch is RFC 7396, section 2: what Flow does with a
// checkpoint. Exported to the external tests of this directory too.
func ApplyMergePatch(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
		} else {
			t[k] = ApplyMergePatch(t[k], v)
		}
	}
	return t
}

func TestUint32(t *testing.T) {
	for in, want := range map[string]uint32{`7`: 7, `"7"`: 7, `4294967295`: 0xffffffff, `"4294967295"`: 0xffffffff, `null`: 0} {
		var u Uint32
		if err := json.Unmarshal([]byte(in), &u); err != nil || uint32(u) != want {
			t.Errorf("%s: %d, %v", in, u, err)
		}
	}
	for _, in := range []string{`-1`, `4294967296`, `1.5`, `"x"`} {
		var u Uint32
		if err := json.Unmarshal([]byte(in), &u); err == nil {
			t.Errorf("%s parsed as %d", in, u)
		}
	}
	// The first shard's range arrives without keyBegin.
	var r RangeSpec
	if err := json.Unmarshal([]byte(`{"keyEnd":2147483647,"rClockEnd":4294967295}`), &r); err != nil {
		t.Fatal(err)
	}
	if !r.Owns(0) || !r.Owns(0x7fffffff) || r.Owns(0x80000000) {
		t.Errorf("range %+v", r)
	}
}

func TestInvoked(t *testing.T) {
	pipe, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pipe.Close()
	defer w.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	file, err := os.Create(filepath.Join(t.TempDir(), "requests.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	for name, tc := range map[string]struct {
		args  []string
		stdin *os.File
		want  bool
	}{
		"the runtime":                 {nil, pipe, true},
		"the runtime, log level":      {[]string{"--log.level=debug"}, pipe, true},
		"log level, separate value":   {[]string{"--log.level", "info"}, pipe, true},
		"requests from a file":        {nil, file, true},
		"a command":                   {[]string{"spec"}, pipe, false},
		"another flag":                {[]string{"--config", "x"}, pipe, false},
		"no command, stdin /dev/null": {nil, devnull, false},
	} {
		t.Run(name, func(t *testing.T) {
			if got := Invoked(tc.args, tc.stdin); got != tc.want {
				t.Errorf("Invoked(%q) = %v", tc.args, got)
			}
		})
	}
}

func TestLogLevel(t *testing.T) {
	for name, tc := range map[string]struct {
		args      []string
		env, want string
	}{
		"default":                    {want: "info"},
		"LOG_LEVEL, as Flow sets it": {env: "debug", want: "debug"},
		"LOG_LEVEL unknown":          {env: "undefined_level", want: "info"},
		"flag over LOG_LEVEL":        {args: []string{"--log.level=warn"}, env: "debug", want: "warn"},
		"flag, separate value":       {args: []string{"--log.level", "ERROR"}, want: "error"},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := logLevel(Env{Args: tc.args, Getenv: func(k string) string {
				if k == "LOG_LEVEL" {
					return tc.env
				}
				return ""
			}})
			if err != nil || got != tc.want {
				t.Errorf("logLevel = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := logLevel(Env{Args: []string{"--log.level=loud"}, Getenv: func(string) string { return "" }}); err == nil {
		t.Error("--log.level=loud accepted")
	}
}
