package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"source-stripe/internal/testbin"
	"source-stripe/protocol"
)

// proc is a connector process the test talks to while it runs: it can be
// signalled or killed mid-read, and its output is kept as a platform would
// see it, line by line.
type proc struct {
	t   *testing.T
	cmd *exec.Cmd

	mu      sync.Mutex
	lines   [][]byte // complete lines of stdout
	partial []byte   // what followed the last newline when stdout closed
	records int
	states  int
	update  chan struct{} // closed and replaced on every line
	stderr  bytes.Buffer
	read    chan struct{} // closed when stdout is drained
}

// start runs the connector with args; the process is killed when the test
// ends if it is still running.
func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(testbin.Path(t), args...)
	cmd.Env = append(testbin.BaseEnv(), env...)
	p := &proc{t: t, cmd: cmd, update: make(chan struct{}), read: make(chan struct{})}
	cmd.Stderr = &lockedWriter{mu: &p.mu, w: &p.stderr}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	go p.readStdout(stdout)
	return p
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func (p *proc) readStdout(r io.Reader) {
	defer close(p.read)
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		line, err := br.ReadBytes('\n')
		p.mu.Lock()
		if err == nil {
			p.lines = append(p.lines, line[:len(line)-1])
			switch {
			case bytes.HasPrefix(line, []byte(`{"type":"RECORD"`)):
				p.records++
			case bytes.HasPrefix(line, []byte(`{"type":"STATE"`)):
				p.states++
			}
		} else {
			p.partial = line
		}
		close(p.update)
		p.update = make(chan struct{})
		p.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// waitUntil waits until cond holds for the records and states seen so far;
// false when stdout closed or timeout passed first.
func (p *proc) waitUntil(timeout time.Duration, cond func(records, states int) bool) bool {
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		ok, update := cond(p.records, p.states), p.update
		p.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-update:
		case <-p.read:
			p.mu.Lock()
			defer p.mu.Unlock()
			return cond(p.records, p.states)
		case <-deadline:
			return false
		}
	}
}

func (p *proc) signal(sig os.Signal) {
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Fatalf("signalling the connector: %v", err)
	}
}

// exit waits for the process to end, at most timeout, and returns its exit
// code (-1 when a signal killed it).
func (p *proc) exit(timeout time.Duration) int {
	p.t.Helper()
	done := make(chan error, 1)
	go func() {
		<-p.read
		done <- p.cmd.Wait()
	}()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		if err != nil {
			p.t.Fatalf("waiting for the connector: %v", err)
		}
		return 0
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		p.t.Fatalf("the connector did not exit within %s; stderr:\n%s", timeout, p.stderrText())
		return 0
	}
}

func (p *proc) stderrText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// messages parses every complete line of stdout strictly; a last line cut
// off by a kill is returned apart, as a platform would drop it.
func (p *proc) messages() (msgs []protocol.Message, cut []byte) {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, line := range p.lines {
		var m protocol.Message
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil {
			p.t.Fatalf("stdout line %d is not an Airbyte message (%v): %.300s", i+1, err, line)
		}
		msgs = append(msgs, m)
	}
	return msgs, p.partial
}

// result returns the output as a testbin.Result, for its accessors.
func (p *proc) result(exitCode int) testbin.Result {
	msgs, cut := p.messages()
	p.mu.Lock()
	stdout := append(bytes.Join(p.lines, []byte("\n")), '\n')
	p.mu.Unlock()
	return testbin.Result{Messages: msgs, Stdout: append(stdout, cut...), Stderr: p.stderrText(), ExitCode: exitCode}
}

// problems collects what a check found wrong; analyze reports into it too.
type problems struct{ list []string }

func (p *problems) Errorf(format string, args ...any) {
	p.list = append(p.list, fmt.Sprintf(format, args...))
}

func (p *problems) ok() bool { return len(p.list) == 0 }

// expect runs check and fails the test with every problem it finds.
func expect(t *testing.T, check func(p *problems)) {
	t.Helper()
	var p problems
	check(&p)
	for _, msg := range p.list {
		t.Error(msg)
	}
}
