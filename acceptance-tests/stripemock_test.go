package acceptance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"source-stripe/internal/testbin"
)

// stripeMockModule is the module of the stripe-mock command, at the version
// go.mod pins.
const stripeMockModule = "github.com/stripe/stripe-mock"

// stripeMockKey is any test key: stripe-mock accepts every sk_test_ key.
const stripeMockKey = "sk_test_123"

// stripeMock is one running stripe-mock process, shared by the tests.
type stripeMock struct {
	URL       string
	AccountID string

	cmd  *exec.Cmd
	dir  string
	log  *testbin.LockedBuffer
	done chan struct{}
}

var (
	mockMu   sync.Mutex
	mock     *stripeMock
	mockErr  error
	mockDone bool
)

// startedStripeMock builds and starts stripe-mock once per test process;
// TestMain stops it.
func startedStripeMock(t testing.TB) *stripeMock {
	t.Helper()
	mockMu.Lock()
	defer mockMu.Unlock()
	if !mockDone {
		mockDone = true
		mock, mockErr = startStripeMock()
	}
	if mockErr != nil {
		t.Fatalf("stripe-mock: %v", mockErr)
	}
	return mock
}

func stopStripeMock() error {
	mockMu.Lock()
	defer mockMu.Unlock()
	if mock == nil {
		return nil
	}
	err := mock.stop()
	mock = nil
	return err
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..")
}

func startStripeMock() (*stripeMock, error) {
	dir, err := os.MkdirTemp("", "acceptance-stripe-mock")
	if err != nil {
		return nil, err
	}
	bin, err := buildStripeMock(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// Another process may take a port between choosing and binding it.
	for attempt := 1; ; attempt++ {
		m, err := runStripeMock(bin, dir)
		if err == nil {
			return m, nil
		}
		if attempt == 3 {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

// buildStripeMock builds the stripe-mock command in a throwaway module. Our
// go.sum lists only the stripe-mock packages the repo imports, not the
// command's dependencies; stripe-mock's own go.sum does, so the build needs
// neither a change to our go.mod/go.sum nor the network when the module
// cache is warm.
func buildStripeMock(dir string) (string, error) {
	list := exec.Command("go", "list", "-m", "-f", "{{.Version}} {{.Dir}} {{.GoVersion}}", stripeMockModule)
	list.Dir = moduleRoot()
	out, err := list.Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %v %s", stripeMockModule, err, stderrOf(err))
	}
	fields := strings.Fields(string(out))
	if len(fields) != 3 {
		return "", fmt.Errorf("go list -m %s printed %q", stripeMockModule, out)
	}
	version, modDir, goVersion := fields[0], fields[1], fields[2]
	ownSum, err := os.ReadFile(filepath.Join(modDir, "go.sum"))
	if err != nil {
		return "", err
	}
	ourSum, err := os.ReadFile(filepath.Join(moduleRoot(), "go.sum"))
	if err != nil {
		return "", err
	}
	var sum bytes.Buffer
	sum.Write(ownSum)
	for _, line := range strings.Split(string(ourSum), "\n") {
		if strings.HasPrefix(line, stripeMockModule+" ") {
			sum.WriteString(line + "\n")
		}
	}
	mod := filepath.Join(dir, "module")
	if err := os.MkdirAll(mod, 0o755); err != nil {
		return "", err
	}
	gomod := fmt.Sprintf("module stripemockbuild\n\ngo %s\n\nrequire %s %s\n", goVersion, stripeMockModule, version)
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte(gomod), 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(mod, "go.sum"), sum.Bytes(), 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "stripe-mock")
	build := exec.Command("go", "build", "-mod=mod", "-o", bin, stripeMockModule)
	build.Dir = mod
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building stripe-mock %s: %v\n%s", version, err, out)
	}
	return bin, nil
}

func stderrOf(err error) string {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(exit.Stderr)
	}
	return ""
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// runStripeMock starts stripe-mock on two free loopback ports (its defaults
// listen on every interface) and waits until it answers.
func runStripeMock(bin, dir string) (*stripeMock, error) {
	httpPort, err := freePort()
	if err != nil {
		return nil, err
	}
	httpsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	m := &stripeMock{
		URL:  "http://127.0.0.1:" + strconv.Itoa(httpPort),
		dir:  dir,
		log:  &testbin.LockedBuffer{},
		done: make(chan struct{}),
	}
	m.cmd = exec.Command(bin,
		"-http-addr", "127.0.0.1:"+strconv.Itoa(httpPort),
		"-https-addr", "127.0.0.1:"+strconv.Itoa(httpsPort))
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	if err := m.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		_ = m.cmd.Wait()
		close(m.done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		id, err := m.account()
		if err == nil {
			m.AccountID = id
			return m, nil
		}
		select {
		case <-m.done:
			return nil, fmt.Errorf("stripe-mock exited: %v\n%s", m.cmd.ProcessState, m.log.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			m.cmd.Process.Kill()
			<-m.done
			return nil, fmt.Errorf("stripe-mock did not answer within 30s: %v\n%s", err, m.log.String())
		}
	}
}

// account reads the id of stripe-mock's fixture account.
func (m *stripeMock) account() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.URL+"/v1/account", nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+stripeMockKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var acct struct {
		ID string `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&acct); err != nil || resp.StatusCode != http.StatusOK || acct.ID == "" {
		return "", fmt.Errorf("GET /v1/account: status %d, id %q, err %v", resp.StatusCode, acct.ID, err)
	}
	return acct.ID, nil
}

func (m *stripeMock) stop() error {
	defer os.RemoveAll(m.dir)
	select {
	case <-m.done:
		return fmt.Errorf("stripe-mock had already exited: %v\n%s", m.cmd.ProcessState, m.log.String())
	default:
	}
	if err := m.cmd.Process.Kill(); err != nil {
		return err
	}
	<-m.done
	return nil
}

// mockExchange is one answer stripe-mock logged.
type mockExchange struct {
	Request string
	Status  int
}

// exchanges parses stripe-mock's log from offset: "Request: GET /v1/..."
// lines, then "Response: elapsed=... status=N". Concurrent requests
// interleave, so the pairing of request and status is only a hint.
func (m *stripeMock) exchanges(offset int) []mockExchange {
	var out []mockExchange
	last := ""
	sc := bufio.NewScanner(strings.NewReader(m.log.String()[offset:]))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "Request: ") {
			last = line
		}
		if rest, ok := strings.CutPrefix(line, "Response: "); ok {
			_, status, _ := strings.Cut(rest, "status=")
			n, _ := strconv.Atoi(strings.TrimSpace(status))
			out = append(out, mockExchange{Request: last, Status: n})
		}
	}
	return out
}
