package testbin

import (
	"bufio"
	"bytes"
	"io"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// Lines is the connector running in the background, each line of its
// stdout handed to the caller as it comes: the one runner under Process
// (Airbyte messages) and the Flow harness (capture responses).
type Lines struct {
	t   testing.TB
	Cmd *exec.Cmd
	// Stdin is a pipe to the process, when StartLines was asked for one.
	Stdin  io.WriteCloser
	stderr LockedBuffer
	notify chan struct{}
	done   chan struct{}
	// Progress, when set, says what stdout has brought so far, for a
	// WaitFor that fails.
	Progress func() string
}

// StartLines starts the connector with env (added to BaseEnv) and args.
// onLine gets each line of stdout without its newline; whole is false for
// a last line cut off. With stdin, Stdin is a pipe to the process. The
// test's cleanup kills the process if it still runs.
func StartLines(t testing.TB, env, args []string, stdin bool, onLine func(line []byte, whole bool)) *Lines {
	t.Helper()
	l := &Lines{t: t, notify: make(chan struct{}, 1), done: make(chan struct{})}
	l.Cmd = exec.Command(Path(t), args...)
	l.Cmd.Env = append(BaseEnv(), env...)
	l.Cmd.Stderr = &l.stderr
	var err error
	if stdin {
		if l.Stdin, err = l.Cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
	}
	out, err := l.Cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go l.read(out, onLine)
	t.Cleanup(func() {
		select {
		case <-l.done:
		default:
			l.Cmd.Process.Kill()
			<-l.done
		}
	})
	return l
}

func (l *Lines) read(out io.Reader, onLine func([]byte, bool)) {
	r := bufio.NewReaderSize(out, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if whole := len(line) > 0 && line[len(line)-1] == '\n'; whole {
			onLine(line[:len(line)-1], true)
		} else if len(line) > 0 {
			onLine(line, false)
		}
		select {
		case l.notify <- struct{}{}:
		default:
		}
		if err != nil {
			break
		}
	}
	l.Cmd.Wait()
	close(l.done)
}

// Done is closed once the process has exited and stdout is read.
func (l *Lines) Done() <-chan struct{} { return l.done }

// Stderr returns what the process wrote to stderr so far.
func (l *Lines) Stderr() string { return l.stderr.String() }

// WaitFor waits until cond holds, at most timeout: it is checked after
// each line and every 50 ms. It fails the test on the timeout, or when the
// process exits before cond holds.
func (l *Lines) WaitFor(timeout time.Duration, what string, cond func() bool) {
	l.t.Helper()
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-l.notify:
		case <-time.After(50 * time.Millisecond):
		case <-l.done:
			if !cond() {
				l.t.Fatalf("the connector exited before %s%s; stderr:\n%s", what, l.progress(), l.Stderr())
			}
			return
		case <-deadline:
			l.t.Fatalf("no %s within %s%s; stderr:\n%s", what, timeout, l.progress(), l.Stderr())
		}
	}
}

func (l *Lines) progress() string {
	if l.Progress == nil {
		return ""
	}
	return " (so far: " + l.Progress() + ")"
}

// Exit waits for the process to exit, at most timeout (then it kills it and
// fails the test, saying after what), and returns its exit code.
func (l *Lines) Exit(timeout time.Duration, after string) int {
	l.t.Helper()
	select {
	case <-l.done:
	case <-time.After(timeout):
		l.Cmd.Process.Kill()
		<-l.done
		l.t.Fatalf("the connector did not exit within %s of %s; stderr:\n%s", timeout, after, l.Stderr())
	}
	return l.Cmd.ProcessState.ExitCode()
}

// LockedBuffer is a buffer a process writes while the test reads it.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Len is how many bytes were written.
func (b *LockedBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}
