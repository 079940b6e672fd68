package e2e

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"source-stripe/internal/fakestripe"
	"source-stripe/internal/testbin"
)

// leaks reports whether key, or the part of it Stripe never shows (all but
// its type prefix and last four characters), appears in a run's output:
// raw, JSON-escaped, or in any string of any message once decoded.
func leaks(res testbin.Result, key string) bool {
	secret := key
	for _, prefix := range []string{"sk_live_", "sk_test_", "rk_live_", "rk_test_", "pk_live_", "pk_test_"} {
		secret = strings.TrimPrefix(secret, prefix)
	}
	forms := []string{key}
	if len(secret) > 12 {
		forms = append(forms, secret[:len(secret)-4])
	}
	for _, form := range forms {
		escaped, _ := json.Marshal(form)
		if bytes.Contains(res.Stdout, []byte(form)) || bytes.Contains(res.Stdout, escaped[1:len(escaped)-1]) || strings.Contains(res.Stderr, form) {
			return true
		}
		for _, m := range res.Messages {
			raw, _ := json.Marshal(m)
			var v any
			json.Unmarshal(raw, &v)
			if containsString(v, form) {
				return true
			}
		}
	}
	return false
}

func containsString(v any, s string) bool {
	switch v := v.(type) {
	case string:
		return strings.Contains(v, s)
	case map[string]any:
		for k, x := range v {
			if strings.Contains(k, s) || containsString(x, s) {
				return true
			}
		}
	case []any:
		for _, x := range v {
			if containsString(x, s) {
				return true
			}
		}
	}
	return false
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// echoKey is a hostile server's error message: the whole key, as no real
// Stripe answer has it, but a proxy or a debugging endpoint might.
func echoKey(r *http.Request) string {
	return "Invalid API Key provided: " + strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
}

func stripeError(msg string) []byte {
	raw, _ := json.Marshal(map[string]any{"error": map[string]any{"type": "invalid_request_error", "message": msg}})
	return raw
}

// TestSecretsNeverShow runs every command and every failure path with a
// distinctive key, against servers that echo the key back where they can,
// and checks that the key appears nowhere in stdout or stderr.
func TestSecretsNeverShow(t *testing.T) {
	const key = "sk_test_SecretsTest0123456789abcdefXYZ"
	const restricted = "rk_test_SecretsTest0123456789abcdefXYZ"
	const odd = `sk_test_Odd"Key<With>&Quotes\9876543210`
	keys := map[string]fakestripe.KeyInfo{key: {}, odd: {}, restricted: {Kinds: []string{fakestripe.KindCoupon}}}

	// hostile answers some paths itself, echoing the key.
	var truncatedOnce atomic.Bool
	hostile := func(r *http.Request) (bool, int, []byte, http.Header) {
		switch {
		case r.URL.Path == "/v1/plans": // an HTML page quoting the key
			return true, 200, []byte("<html><body>" + echoKey(r) + "</body></html>"), http.Header{"Content-Type": {"text/html"}}
		case r.URL.Path == "/v1/products": // a 4xx quoting it
			return true, 400, stripeError(echoKey(r)), nil
		case r.URL.Path == "/v1/refunds": // an error body without an error object
			return true, 404, []byte(`{"detail":"` + echoKey(r) + `"}`), nil
		case r.URL.Path == "/v1/transfers" && !truncatedOnce.Swap(true): // cut off mid-JSON, then fine: a retry warning quotes the body
			return true, 200, []byte(`{"object":"list","data":[{"id":"` + echoKey(r)), nil
		case r.URL.Path == "/v1/payouts": // a list without data, quoting it
			return true, 200, []byte(`{"object":"list","note":"` + echoKey(r) + `"}`), nil
		}
		return false, 0, nil, nil
	}
	fake := fakestripe.New(fakestripe.WithKeys(keys), fakestripe.WithHook(hostile))
	t.Cleanup(fake.Close)
	fake.Seed(fakestripe.DefaultDataset().Scale(0.2))
	// revoked answers 401 to everything, echoing the key.
	revoked := fakestripe.New(fakestripe.WithHook(func(r *http.Request) (bool, int, []byte, http.Header) {
		return true, 401, stripeError(echoKey(r)), nil
	}))
	t.Cleanup(revoked.Close)

	config := func(k string) string {
		raw, _ := json.Marshal(map[string]any{"account_id": fakestripe.DefaultAccountID, "client_secret": k})
		return writeFile(t, "config.json", raw)
	}
	at := func(base string) []string { return []string{"STRIPE_API_BASE=" + base} }
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		exit int
		// knob: the case waits for retries to run out (see knobs).
		knob bool
	}{
		{"spec", at(fake.URL()), []string{"spec"}, 0, false},
		{"check", at(fake.URL()), []string{"check", "--config", config(key)}, 0, false},
		{"discover", at(fake.URL()), []string{"discover", "--config", config(key)}, 0, false},
		{"read", at(fake.URL()), []string{"read", "--config", config(key), "--streams", "coupons,customers"}, 0, false},
		{"read, key from the environment", append(at(fake.URL()), "STRIPE_API_KEY="+key), []string{"read", "--streams", "coupons"}, 0, false},
		{"read, a key with quotes and brackets", at(fake.URL()), []string{"read", "--config", config(odd), "--streams", "coupons,products"}, 1, false},
		{"check, revoked key echoed", at(revoked.URL()), []string{"check", "--config", config(key)}, 0, false},
		{"read, revoked key echoed", at(revoked.URL()), []string{"read", "--config", config(key)}, 1, false},
		{"read, revoked key from the environment", append(at(revoked.URL()), "STRIPE_API_KEY="+key), []string{"read"}, 1, false},
		{"read, restricted key without a permission", at(fake.URL()), []string{"read", "--config", config(restricted), "--streams", "coupons,charges"}, 1, false},
		{"check, nothing listening", at(closedPort(t)), []string{"check", "--config", config(key)}, 0, true},
		{"read, nothing listening", at(closedPort(t)), []string{"read", "--config", config(key)}, 1, true},
		{"read, HTML quoting the key", at(fake.URL()), []string{"read", "--config", config(key), "--streams", "plans"}, 1, false},
		{"read, 400 quoting the key", at(fake.URL()), []string{"read", "--config", config(key), "--streams", "products"}, 1, false},
		{"read, error body without an error object", at(fake.URL()), []string{"read", "--config", config(key), "--streams", "refunds"}, 1, false},
		{"read, truncated body quoting the key, retried", at(fake.URL()), []string{"read", "--config", config(key), "--streams", "transfers"}, 0, false},
		{"read, list without data quoting the key", at(fake.URL()), []string{"read", "--config", config(key), "--streams", "payouts"}, 1, false},
		{"read, the key in the wrong field", at(fake.URL()), []string{"read", "--config", writeFile(t, "swapped.json", []byte(cfgJSONWith(key)))}, 1, false},
		{"bad flag", at(fake.URL()), []string{"read", "--config", config(key), "--streams"}, 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := tc.env
			if tc.knob {
				env = append(env, knobs...)
			}
			res := testbin.Run(t, time.Minute, env, tc.args...)
			if res.ExitCode != tc.exit {
				t.Errorf("exit %d, want %d; stderr:\n%s", res.ExitCode, tc.exit, res.Stderr)
			}
			for _, k := range []string{key, restricted, odd} {
				if leaks(res, k) {
					t.Errorf("the key %s shows in the output:\n%s\n%s", k[:12], res.Stdout, res.Stderr)
				}
			}
			if strings.Contains(res.Stderr, "panic:") {
				t.Errorf("panic:\n%s", res.Stderr)
			}
		})
	}

	// A Go crash dump (SIGQUIT, as a panic prints): every goroutine's
	// stack, arguments included.
	t.Run("crash dump", func(t *testing.T) {
		slow := fakestripe.New(fakestripe.WithKeys(keys), fakestripe.WithLatency(time.Second, 0))
		t.Cleanup(slow.Close)
		slow.Seed(fakestripe.DefaultDataset().Scale(0.1))
		p := start(t, at(slow.URL()), "read", "--config", config(key))
		time.Sleep(300 * time.Millisecond) // it waits for its first answer, the key in hand
		p.signal(syscall.SIGQUIT)
		res := p.result(p.exit(10 * time.Second))
		if !strings.Contains(res.Stderr, "goroutine ") {
			t.Fatalf("no crash dump (exit %d):\n%s", res.ExitCode, res.Stderr)
		}
		if leaks(res, key) {
			t.Errorf("the key shows in the crash dump:\n%s", res.Stderr)
		}
	})
}

// cfgJSONWith is a config whose fields are swapped: the key in account_id.
func cfgJSONWith(key string) string {
	raw, _ := json.Marshal(map[string]any{"account_id": key, "client_secret": "acct_1A2b3C4d5E6f7G8h"})
	return string(raw)
}
