package testbin

import (
	"bytes"
	"encoding/json"
	"sync"
	"syscall"
	"testing"
	"time"

	"source-stripe/protocol"
)

// Process is the connector running in the background, its stdout read line
// by line as it comes, for follow mode and for stopping it mid-read.
type Process struct {
	*Lines

	mu     sync.Mutex
	stdout bytes.Buffer
	msgs   []protocol.Message
	seen   []time.Time // when each message arrived
	err    error
}

// Start starts the connector with args and env; the test's cleanup kills it
// if it still runs.
func Start(t testing.TB, env []string, args ...string) *Process {
	t.Helper()
	p := &Process{}
	p.Lines = StartLines(t, env, args, false, func(line []byte, _ bool) {
		var m protocol.Message
		err := json.Unmarshal(line, &m)
		p.mu.Lock()
		defer p.mu.Unlock()
		p.stdout.Write(line)
		p.stdout.WriteByte('\n')
		if err == nil {
			p.msgs = append(p.msgs, m)
			p.seen = append(p.seen, time.Now())
		} else if p.err == nil {
			p.err = err
		}
	})
	return p
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
	p.Lines.WaitFor(timeout, what, func() bool {
		msgs, _ := p.Messages()
		return cond(msgs)
	})
}

// Stop sends sig and waits for the process to exit, at most timeout; it
// returns the result as Run would.
func (p *Process) Stop(sig syscall.Signal, timeout time.Duration) Result {
	p.t.Helper()
	p.Cmd.Process.Signal(sig)
	code := p.Exit(timeout, sig.String())
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		p.t.Fatalf("stdout holds a line that is not an Airbyte message: %v", p.err)
	}
	return Result{Messages: p.msgs, Stdout: p.stdout.Bytes(), Stderr: p.Stderr(), ExitCode: code}
}
