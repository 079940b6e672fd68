package spec

import (
	"errors"
	"strings"
	"testing"
	"time"

	"source-stripe/protocol"
)

func TestParse(t *testing.T) {
	cfg, err := Parse([]byte(`{"account_id":"acct_1","client_secret":"sk_test_abc","start_date":"2020-01-02T03:04:05Z","lookback_window_days":3}`))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{AccountID: "acct_1", APIKey: "sk_test_abc", StartDate: time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC), LookbackWindowDays: 3, PollInterval: DefaultPollInterval}
	if cfg != want {
		t.Fatalf("got %+v, want %+v", cfg, want)
	}
	cfg, err = Parse([]byte(`{"account_id":"acct_1","client_secret":"sk_test_abc"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.StartDate.Equal(DefaultStartDate) || cfg.LookbackWindowDays != 0 || cfg.Follow || cfg.PollInterval != 500*time.Millisecond {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
	cfg, err = Parse([]byte(`{"account_id":"acct_1","client_secret":"sk_test_abc","follow":true,"poll_interval":"2s","max_requests_per_second":12.5}`))
	if err != nil || !cfg.Follow || cfg.PollInterval != 2*time.Second || cfg.MaxRequestsPerSecond != 12.5 {
		t.Fatalf("follow config: %+v %v", cfg, err)
	}
}

func TestParseRejects(t *testing.T) {
	for _, tc := range []struct{ name, config, want string }{
		{"not JSON", `{`, "not valid JSON"},
		{"array", `[]`, "must be a JSON object, got an array"},
		{"missing key", `{"account_id":"acct_1"}`, "missing: missing properties: 'client_secret'"},
		{"missing account", `{"client_secret":"sk_test_x"}`, "'account_id'"},
		{"key wrong type", `{"account_id":"acct_1","client_secret":5}`, "'client_secret' expected string, but got number"},
		{"publishable key", `{"account_id":"acct_1","client_secret":"pk_test_x"}`, "publishable key"},
		{"empty key", `{"account_id":"acct_1","client_secret":" "}`, "'client_secret' is empty"},
		{"start_date words", `{"account_id":"acct_1","client_secret":"sk_test_x","start_date":"yesterday"}`, `'start_date' must be RFC 3339, like "2017-01-25T00:00:00Z", got "yesterday"`},
		{"start_date date only", `{"account_id":"acct_1","client_secret":"sk_test_x","start_date":"2020-01-01"}`, `got "2020-01-01"`},
		{"negative lookback", `{"account_id":"acct_1","client_secret":"sk_test_x","lookback_window_days":-1}`, "'lookback_window_days' must be >= 0"},
		{"poll interval words", `{"account_id":"acct_1","client_secret":"sk_test_x","poll_interval":"often"}`, `'poll_interval' must be a duration of at least 100ms, like "500ms" or "2s", got "often"`},
		{"poll interval too short", `{"account_id":"acct_1","client_secret":"sk_test_x","poll_interval":"10ms"}`, `got "10ms"`},
		{"zero request rate", `{"account_id":"acct_1","client_secret":"sk_test_x","max_requests_per_second":0}`, "'max_requests_per_second' must be > 0"},
		{"follow not a boolean", `{"account_id":"acct_1","client_secret":"sk_test_x","follow":"yes"}`, "'follow' expected boolean"},
		{"fractional lookback", `{"account_id":"acct_1","client_secret":"sk_test_x","lookback_window_days":1.5}`, "'lookback_window_days' expected integer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.config))
			var perr *protocol.Error
			if !errors.As(err, &perr) || perr.FailureType != protocol.FailureConfig {
				t.Fatalf("want a config_error, got %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "sk_test_x") {
				t.Fatalf("error leaks the key: %q", err)
			}
		})
	}
}
