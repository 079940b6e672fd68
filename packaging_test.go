package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"source-stripe/catalog"
	"source-stripe/internal/fakestripe"
	"source-stripe/spec"
	"source-stripe/stripeapi"
)

// No Docker engine runs where the tests run, so the image is proven by what
// the Dockerfile promises, read instruction by instruction: Airbyte's
// conventions (entrypoint, labels matching metadata.yaml, a non-root user
// airbyte with a writable /airbyte), Flow's labels, CA certificates; and
// its build command, run here, makes a static binary that reports the
// image's version and works as Airbyte and Flow run it.

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	stage int // 0: before the first FROM
	cmd   string
	args  string
}

func parseDockerfile(t *testing.T) []instruction {
	t.Helper()
	raw, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	stage := 0
	var cur strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSpace(strings.TrimSuffix(trimmed, `\`)) + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		cur.Reset()
		cmd = strings.ToUpper(cmd)
		if cmd == "FROM" {
			stage++
		}
		out = append(out, instruction{stage: stage, cmd: cmd, args: strings.TrimSpace(args)})
	}
	if cur.Len() > 0 {
		t.Fatal("the Dockerfile ends inside a continued line")
	}
	return out
}

// pairs reads the key=value pairs of ENV and LABEL, unquoting values.
func pairs(t *testing.T, args string) map[string]string {
	t.Helper()
	out := map[string]string{}
	re := regexp.MustCompile(`^([A-Za-z0-9_.\-]+)=("(?:[^"\\]|\\.)*"|\S*)\s*`)
	for rest := strings.TrimSpace(args); rest != ""; {
		m := re.FindStringSubmatch(rest)
		if m == nil {
			t.Fatalf("not key=value pairs: %q", args)
		}
		v := m[2]
		if strings.HasPrefix(v, `"`) {
			var err error
			if v, err = strconvUnquote(v); err != nil {
				t.Fatalf("%s: %v", m[0], err)
			}
		}
		out[m[1]] = v
		rest = rest[len(m[0]):]
	}
	return out
}

func strconvUnquote(s string) (string, error) {
	var v string
	err := json.Unmarshal([]byte(s), &v)
	return v, err
}

// image is what the Dockerfile says about the image it builds.
type image struct {
	stages     int
	args       map[string]string // ARG defaults, before the first FROM
	base       string            // the runtime stage's FROM
	buildCmd   string            // the go build of the build stage, ${VERSION} expanded
	entrypoint []string
	env        map[string]string
	labels     map[string]string
	user       string
	runtimeRun []string // the runtime stage's RUN commands
	copied     string   // where the runtime stage puts the binary
}

func readImage(t *testing.T) image {
	t.Helper()
	ins := parseDockerfile(t)
	img := image{args: map[string]string{}, env: map[string]string{}, labels: map[string]string{}}
	for _, in := range ins {
		img.stages = max(img.stages, in.stage)
	}
	expand := func(s string) string {
		return regexp.MustCompile(`\$\{(\w+)\}`).ReplaceAllStringFunc(s, func(v string) string {
			name := v[2 : len(v)-1]
			val, ok := img.args[name]
			if !ok {
				t.Fatalf("%s names an ARG without a default", v)
			}
			return val
		})
	}
	for _, in := range ins {
		runtime := in.stage == img.stages
		switch {
		case in.cmd == "ARG" && in.stage == 0:
			name, def, ok := strings.Cut(in.args, "=")
			if !ok {
				t.Fatalf("ARG %s before FROM needs a default", in.args)
			}
			img.args[name] = def
		case in.cmd == "ARG":
			if _, ok := img.args[in.args]; !ok || strings.Contains(in.args, "=") {
				t.Fatalf("stage %d: ARG %s must inherit the global ARG", in.stage, in.args)
			}
		case in.cmd == "FROM" && runtime:
			img.base = in.args
		case in.cmd == "RUN" && in.stage < img.stages && strings.Contains(in.args, "go build"):
			img.buildCmd = expand(in.args)
		case in.cmd == "RUN" && runtime:
			img.runtimeRun = append(img.runtimeRun, in.args)
		case in.cmd == "COPY" && runtime && strings.HasPrefix(in.args, "--from=build "):
			f := strings.Fields(in.args)
			img.copied = f[len(f)-1]
		case in.cmd == "ENTRYPOINT":
			if err := json.Unmarshal([]byte(in.args), &img.entrypoint); err != nil {
				t.Fatalf("ENTRYPOINT must be the exec form: %q", in.args)
			}
		case in.cmd == "ENV" && runtime:
			for k, v := range pairs(t, in.args) {
				img.env[k] = expand(v)
			}
		case in.cmd == "LABEL" && runtime:
			for k, v := range pairs(t, in.args) {
				img.labels[k] = expand(v)
			}
		case in.cmd == "USER" && runtime:
			img.user = in.args
		}
	}
	return img
}

// metadata is metadata.yaml's data.
func readMetadata(t *testing.T) map[string]any {
	t.Helper()
	raw, err := os.ReadFile("metadata.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := parseYAML(raw)
	if err != nil {
		t.Fatalf("metadata.yaml: %v", err)
	}
	if doc["metadataSpecVersion"] != "1.0" {
		t.Errorf("metadataSpecVersion %v", doc["metadataSpecVersion"])
	}
	data, ok := doc["data"].(map[string]any)
	if !ok {
		t.Fatal("metadata.yaml has no data mapping")
	}
	return data
}

func TestDockerfile(t *testing.T) {
	img := readImage(t)
	if img.stages < 2 {
		t.Errorf("want a multi-stage build, got %d stage(s)", img.stages)
	}
	if len(img.entrypoint) != 1 || !filepath.IsAbs(img.entrypoint[0]) {
		t.Fatalf("ENTRYPOINT must be the binary's absolute path alone, got %q", img.entrypoint)
	}
	if ep := img.entrypoint[0]; img.env["AIRBYTE_ENTRYPOINT"] != ep || img.copied != ep {
		t.Errorf("ENTRYPOINT %q, AIRBYTE_ENTRYPOINT %q and the copied binary %q must be the same path", ep, img.env["AIRBYTE_ENTRYPOINT"], img.copied)
	}
	// Airbyte: a non-root user airbyte, created in the image, owning /airbyte.
	if img.user != "airbyte" {
		t.Errorf("USER %q, want airbyte", img.user)
	}
	run := strings.Join(img.runtimeRun, " && ")
	for _, want := range []string{"adduser", "mkdir -p /airbyte", "chown airbyte:airbyte /airbyte"} {
		if !strings.Contains(run, want) || !strings.Contains(run, "airbyte") {
			t.Errorf("the runtime stage must run %q (creating the user airbyte and a /airbyte it owns); it runs %q", want, run)
		}
	}
	// CA certificates for HTTPS to api.stripe.com, and a shell for Airbyte.
	if !strings.HasPrefix(img.base, "alpine:3.") || !strings.Contains(run, "apk add --no-cache ca-certificates") {
		t.Errorf("the runtime stage must be a pinned alpine (it has sh) that installs ca-certificates; FROM %q, RUN %q", img.base, run)
	}
	// Estuary Flow.
	if img.labels["FLOW_RUNTIME_PROTOCOL"] != "capture" || img.labels["FLOW_RUNTIME_CODEC"] != "json" || img.env["FLOW_RUNTIME_CODEC"] != "json" {
		t.Errorf("want labels FLOW_RUNTIME_PROTOCOL=capture, FLOW_RUNTIME_CODEC=json and ENV FLOW_RUNTIME_CODEC=json; labels %v, env %v", img.labels, img.env)
	}
	if !strings.HasPrefix(img.buildCmd, "CGO_ENABLED=0 go build") || !strings.Contains(img.buildCmd, "-X main.version="+img.args["VERSION"]) {
		t.Errorf("the build must be a static CGO_ENABLED=0 go build stamping main.version with VERSION, got %q", img.buildCmd)
	}
}

func TestMetadata(t *testing.T) {
	img := readImage(t)
	data := readMetadata(t)
	str := func(k string) string {
		s, ok := data[k].(string)
		if !ok || s == "" {
			t.Errorf("data.%s is missing or not a string: %v", k, data[k])
		}
		return s
	}
	for k, want := range map[string]string{
		"connectorType":    "source",
		"connectorSubtype": "api",
		"dockerRepository": img.labels["io.airbyte.name"],
		"dockerImageTag":   img.labels["io.airbyte.version"],
		"documentationUrl": spec.DocumentationURL,
		"githubIssueLabel": "source-stripe",
	} {
		if got := str(k); got != want {
			t.Errorf("data.%s = %q, want %q", k, got, want)
		}
	}
	if img.labels["io.airbyte.version"] != img.args["VERSION"] {
		t.Errorf("io.airbyte.version %q is not the VERSION the binary is stamped with (%q)", img.labels["io.airbyte.version"], img.args["VERSION"])
	}
	str("name")
	str("license")
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`).MatchString(str("definitionId")) {
		t.Errorf("definitionId %q is not a UUID", data["definitionId"])
	}
	if !slices.Contains([]string{"alpha", "beta", "generally_available", "custom"}, str("releaseStage")) {
		t.Errorf("releaseStage %q", data["releaseStage"])
	}
	host, _ := url.Parse(stripeapi.DefaultBaseURL)
	allowed, _ := data["allowedHosts"].(map[string]any)
	if hosts, _ := allowed["hosts"].([]any); !slices.Equal(hosts, []any{host.Hostname()}) {
		t.Errorf("allowedHosts.hosts %v, want [%s]: the only host the connector calls", allowed["hosts"], host.Hostname())
	}
	suggested, _ := data["suggestedStreams"].(map[string]any)
	streams, _ := suggested["streams"].([]any)
	if len(streams) == 0 {
		t.Error("suggestedStreams.streams is empty")
	}
	seen := map[any]bool{}
	for _, s := range streams {
		if name, _ := s.(string); !slices.Contains(catalog.Names(), name) || seen[s] {
			t.Errorf("suggested stream %v is not a stream of the catalog, or is listed twice", s)
		}
		seen[s] = true
	}
}

// TestImageBinary runs the Dockerfile's own build command, writing where
// this test can see it, and runs the binary as the two platforms do.
func TestImageBinary(t *testing.T) {
	img := readImage(t)
	bin := filepath.Join(t.TempDir(), "source-stripe")
	cmdline := regexp.MustCompile(`-o \S+`).ReplaceAllString(img.buildCmd, "-o "+bin)
	if cmdline == img.buildCmd {
		t.Fatalf("the build command has no -o: %q", img.buildCmd)
	}
	build := exec.Command("sh", "-c", cmdline)
	if msg, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmdline, err, msg)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary is dynamically linked")
		}
	}

	fake := fakestripe.New()
	t.Cleanup(fake.Close)
	fake.Seed(fakestripe.DefaultDataset())
	// The image's environment, plus what points the binary at the fake.
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir(), "STRIPE_API_BASE=" + fake.URL(), "STRIPE_API_KEY=" + fakestripe.DefaultKey}
	for k, v := range img.env {
		env = append(env, k+"="+v)
	}
	runBin := func(stdin string, args ...string) []byte {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		if stdin != "" {
			cmd.Stdin = strings.NewReader(stdin) // a pipe, as Flow's runtime gives
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("source-stripe %v: %v\nstderr:\n%s", args, err, stderr.String())
		}
		return out
	}

	if got, want := strings.TrimSpace(string(runBin("", "--version"))), "source-stripe "+img.labels["io.airbyte.version"]; got != want {
		t.Errorf("--version printed %q, want %q", got, want)
	}

	// Airbyte: spec, and a short read.
	var msg struct{ Type string }
	if out := runBin("", "spec"); json.Unmarshal(out, &msg) != nil || msg.Type != "SPEC" {
		t.Errorf("spec printed %q", out)
	}
	records := 0
	sc := bufio.NewScanner(bytes.NewReader(runBin("", "read", "--streams", "coupons")))
	for sc.Scan() {
		var m struct {
			Type   string
			Record *struct{ Stream string }
		}
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("read printed %q", sc.Bytes())
		}
		if m.Type == "RECORD" && m.Record.Stream == "coupons" {
			records++
		}
	}
	if want := fake.Count(fakestripe.KindCoupon); records != want {
		t.Errorf("read emitted %d coupons, the fake holds %d", records, want)
	}

	// Estuary Flow: no command, a request on stdin.
	out := runBin(`{"spec":{"connectorType":"IMAGE","config":{}}}`+"\n", "--log.level=info")
	var resp struct {
		Spec *struct {
			Protocol int `json:"protocol"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(out, &resp); err != nil || resp.Spec == nil || resp.Spec.Protocol != 3032023 {
		t.Errorf("a Flow spec request answered %q", out)
	}
}

// parseYAML reads the subset of YAML metadata.yaml is written in: block
// mappings and block sequences of scalars, indented with spaces, comments,
// plain and double-quoted scalars. Anything else is an error, so that the
// test never reads the file differently from a YAML parser.
func parseYAML(src []byte) (map[string]any, error) {
	type line struct {
		n, indent int
		text      string
	}
	var lines []line
	for i, l := range strings.Split(string(src), "\n") {
		if strings.Contains(l, "\t") {
			return nil, fmt.Errorf("line %d: a tab", i+1)
		}
		if j := strings.Index(l, " #"); j >= 0 {
			l = l[:j]
		}
		trimmed := strings.TrimSpace(l)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		lines = append(lines, line{i + 1, len(l) - len(strings.TrimLeft(l, " ")), strings.TrimRight(trimmed, " ")})
	}
	scalar := func(n int, s string) (any, error) {
		switch {
		case strings.HasPrefix(s, `"`):
			return strconvUnquote(s)
		case s == "" || strings.ContainsAny(s[:1], `'[{&*!|>%@`+"`") || strings.Contains(s, ": "):
			return nil, fmt.Errorf("line %d: %q is outside the YAML subset this test reads", n, s)
		}
		return s, nil
	}
	var block func(i, indent int) (any, int, error)
	block = func(i, indent int) (any, int, error) {
		if strings.HasPrefix(lines[i].text, "- ") || lines[i].text == "-" {
			var seq []any
			for i < len(lines) && lines[i].indent == indent && strings.HasPrefix(lines[i].text, "- ") {
				v, err := scalar(lines[i].n, strings.TrimSpace(lines[i].text[2:]))
				if err != nil {
					return nil, i, err
				}
				seq = append(seq, v)
				i++
			}
			return seq, i, nil
		}
		m := map[string]any{}
		for i < len(lines) && lines[i].indent == indent {
			l := lines[i]
			key, rest, ok := strings.Cut(l.text, ":")
			if !ok || strings.ContainsAny(key, `"' `) {
				return nil, i, fmt.Errorf("line %d: want key: value, got %q", l.n, l.text)
			}
			if _, dup := m[key]; dup {
				return nil, i, fmt.Errorf("line %d: key %q twice", l.n, key)
			}
			rest = strings.TrimSpace(rest)
			i++
			if rest != "" {
				v, err := scalar(l.n, rest)
				if err != nil {
					return nil, i, err
				}
				m[key] = v
				continue
			}
			if i >= len(lines) || lines[i].indent <= indent && !(lines[i].indent == indent && strings.HasPrefix(lines[i].text, "- ")) {
				return nil, i, fmt.Errorf("line %d: %q has no value", l.n, key)
			}
			v, next, err := block(i, lines[i].indent)
			if err != nil {
				return nil, i, err
			}
			m[key], i = v, next
		}
		return m, i, nil
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("empty")
	}
	v, i, err := block(0, 0)
	if err != nil {
		return nil, err
	}
	if i != len(lines) {
		return nil, fmt.Errorf("line %d: unexpected indentation", lines[i].n)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the document is not a mapping")
	}
	return m, nil
}

func TestParseYAML(t *testing.T) {
	good := "a: 1\nb:\n  c: \"x: y\"\n  d:\n    - e\n    - f # comment\n# comment\ng:\n- h\n"
	got, err := parseYAML([]byte(good))
	want := map[string]any{"a": "1", "b": map[string]any{"c": "x: y", "d": []any{"e", "f"}}, "g": []any{"h"}}
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("parseYAML = %v, %v; want %v", got, err, want)
	}
	for _, bad := range []string{"a: [1, 2]\n", "a: {b: c}\n", "a:\n\tb: c\n", "a: 1\na: 2\n", "a:\n", "a: 'x'\n", "a: b: c\n", "a: 1\n  b: 2\n"} {
		if _, err := parseYAML([]byte(bad)); err == nil {
			t.Errorf("parseYAML accepted %q", bad)
		}
	}
}
