package protocol

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"source-stripe/internal/jsontree"
)

// decodedStrings returns every string value of every message written, as a
// platform decoding them would see it.
func decodedStrings(t *testing.T, out []byte) []string {
	t.Helper()
	var all []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var v any
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("broken line %q: %v", sc.Text(), err)
		}
		all = jsontree.Strings(all, v)
	}
	return all
}

// TestWriterMasksEveryFormOfASecret: a secret with characters JSON escapes
// is masked in its escaped form, also when a message quotes it with %q.
func TestWriterMasksEveryFormOfASecret(t *testing.T) {
	for _, secret := range []string{
		"sk_test_plain0123456789",
		`sk_test_a<b>c&d"e\f`,
		"sk_test_tab\there",
		"sk_test_ünïcödé",
	} {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		w.Redact(secret)
		w.Log(LevelWarn, "key "+secret)
		w.Log(LevelWarn, fmt.Sprintf("key %q", secret))
		w.TraceError(&Error{FailureType: FailureConfig, Message: "bad " + secret, Err: errors.New(secret)})
		w.Write(Message{Type: TypeConnectionStatus, ConnectionStatus: &ConnectionStatus{Status: StatusFailed, Message: fmt.Sprintf("%q", secret)}})
		for _, s := range decodedStrings(t, buf.Bytes()) {
			if strings.Contains(s, secret) || strings.Contains(s, fmt.Sprintf("%q", secret)[1:len(fmt.Sprintf("%q", secret))-1]) {
				t.Fatalf("secret %q shows in %q", secret, s)
			}
		}
		if got := w.Mask("stderr: " + secret + fmt.Sprintf(" %q", secret)); strings.Contains(got, secret) {
			t.Fatalf("Mask left %q in %q", secret, got)
		}
	}
}

// TestWriterMasksKeyShapedStrings: a Stripe key that was never registered
// (pasted into another field, another account's) is masked too; ids and
// masked keys are left alone.
func TestWriterMasksKeyShapedStrings(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.Log(LevelWarn, "account sk_live_51Habcdefgh0123 and rk_test_ZZZZzzzz9999; ids ch_1Habcdefgh0123 acct_1Habcdefgh, masked sk_test_****6789")
	out := buf.String()
	for _, leaked := range []string{"51Habcdefgh0123", "ZZZZzzzz9999"} {
		if strings.Contains(out, leaked) {
			t.Fatalf("%s in %s", leaked, out)
		}
	}
	for _, kept := range []string{"sk_live_****", "rk_test_****", "ch_1Habcdefgh0123", "acct_1Habcdefgh", "sk_test_****6789"} {
		if !strings.Contains(out, kept) {
			t.Fatalf("%s missing from %s", kept, out)
		}
	}
	if got := w.Mask("sk_test_0123456789abc"); got != "sk_test_****" {
		t.Fatalf("Mask: %q", got)
	}
}

func TestWriterIgnoresTinySecrets(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	w.Redact("a", "", "abc")
	w.Log(LevelInfo, "a cab abc")
	if !strings.Contains(buf.String(), "a cab abc") {
		t.Fatalf("short secrets mangled the message: %s", buf.String())
	}
}
