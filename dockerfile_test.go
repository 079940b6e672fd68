package main

import (
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// No Docker engine runs where the tests run, so the image is proven by what
// the Dockerfile promises: it builds the binary with a command that works
// here and yields a static binary, and the entrypoint is that binary.
func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	var buildCmd, entrypoint, airbyteEntrypoint, copied string
	stages := 0
	for _, line := range lines {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "FROM "):
			stages++
		case strings.HasPrefix(line, "RUN ") && strings.Contains(line, "go build"):
			buildCmd = strings.TrimPrefix(line, "RUN ")
		case strings.HasPrefix(line, "ENTRYPOINT "):
			var argv []string
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "ENTRYPOINT ")), &argv); err != nil || len(argv) != 1 {
				t.Fatalf("ENTRYPOINT must be the exec form with the binary alone: %q", line)
			}
			entrypoint = argv[0]
		case strings.HasPrefix(line, "ENV AIRBYTE_ENTRYPOINT="):
			airbyteEntrypoint = strings.Trim(strings.TrimPrefix(line, "ENV AIRBYTE_ENTRYPOINT="), `"`)
		case strings.HasPrefix(line, "COPY --from=build "):
			f := strings.Fields(line)
			copied = f[len(f)-1]
		}
	}
	if stages < 2 {
		t.Errorf("want a multi-stage build, got %d stage(s)", stages)
	}
	if entrypoint == "" || entrypoint != copied || entrypoint != airbyteEntrypoint {
		t.Errorf("ENTRYPOINT %q, copied binary %q and AIRBYTE_ENTRYPOINT %q must be the same path", entrypoint, copied, airbyteEntrypoint)
	}
	if !strings.HasPrefix(buildCmd, "CGO_ENABLED=0 go build") {
		t.Fatalf("the build must be a static CGO_ENABLED=0 go build, got %q", buildCmd)
	}

	// Run the Dockerfile's own build command, writing where this test can
	// see it, and check what it made.
	out := filepath.Join(t.TempDir(), "source-stripe")
	cmdline := regexp.MustCompile(`-o \S+`).ReplaceAllString(buildCmd, "-o "+out)
	build := exec.Command("sh", "-c", cmdline)
	if msg, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmdline, err, msg)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary is dynamically linked; the distroless static image cannot run it")
		}
	}
	spec, err := exec.Command(out, "spec").Output()
	if err != nil {
		t.Fatalf("spec with the image's binary: %v", err)
	}
	var msg struct{ Type string }
	if err := json.Unmarshal(spec, &msg); err != nil || msg.Type != "SPEC" {
		t.Fatalf("spec printed %q", spec)
	}
}
