package testbin

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"source-stripe/protocol"
)

// Process is the connector running in the background, its stdout read line
// by line as it comes, for follow mode and for stopping it mid-read.
type Process struct {
	t      testing.TB
	cmd    *exec.Cmd
	stderr lockedBuffer

	mu     sync.Mutex
	stdout bytes.Buffer
	msgs   []protocol.Message
	seen   []time.Time // when each message arrived
	notify chan struct{}
	done   chan struct{}
	err    error
}

// Start starts the connector with args and env; the test's cleanup kills it
// if it still runs.
func Start(t testing.TB, env []string, args ...string) *Process {
	t.Helper()
	p := &Process{t: t, notify: make(chan struct{}, 1), done: make(chan struct{})}
	p.cmd = exec.Command(Path(t), args...)
	p.cmd.Env = append(BaseEnv(), env...)
	p.cmd.Stderr = &p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go p.read(out)
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *Process) read(out io.Reader) {
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var m protocol.Message
		err := json.Unmarshal(line, &m)
		p.mu.Lock()
		p.stdout.Write(line)
		p.stdout.WriteByte('\n')
		if err == nil {
			p.msgs = append(p.msgs, m)
			p.seen = append(p.seen, time.Now())
		} else if p.err == nil {
			p.err = err
		}
		p.mu.Unlock()
		select {
		case p.notify <- struct{}{}:
		default:
		}
	}
	p.cmd.Wait()
	close(p.done)
}

// Messages returns the messages so far, with the time each arrived.
func (p *Process) Messages() ([]protocol.Message, []time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]protocol.Message(nil), p.msgs...), append([]time.Time(nil), p.seen...)
}

// WaitFor waits until cond holds for the messages so far, at most timeout.
func (p *Process) WaitFor(timeout time.Duration, what string, cond func([]protocol.Message) bool) {
	p.t.Helper()
	deadline := time.After(timeout)
	for {
		msgs, _ := p.Messages()
		if cond(msgs) {
			return
		}
		select {
		case <-p.notify:
		case <-time.After(50 * time.Millisecond):
		case <-p.done:
			msgs, _ := p.Messages()
			if !cond(msgs) {
				p.t.Fatalf("the connector exited before %s; stderr:\n%s", what, p.Stderr())
			}
			return
		case <-deadline:
			p.t.Fatalf("no %s within %s; stderr:\n%s", what, timeout, p.Stderr())
		}
	}
}

// Stop sends sig and waits for the process to exit, at most timeout; it
// returns the result as Run would.
func (p *Process) Stop(sig syscall.Signal, timeout time.Duration) Result {
	p.t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.done
		p.t.Fatalf("the connector did not exit within %s of %s; stderr:\n%s", timeout, sig, p.Stderr())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		p.t.Fatalf("stdout holds a line that is not an Airbyte message: %v", p.err)
	}
	code := p.cmd.ProcessState.ExitCode()
	return Result{Messages: p.msgs, Stdout: p.stdout.Bytes(), Stderr: p.stderr.String(), ExitCode: code}
}

// Stderr returns what the process wrote to stderr so far.
func (p *Process) Stderr() string { return p.stderr.String() }

// lockedBuffer is a buffer the process writes while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
