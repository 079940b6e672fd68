package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"

	"source-stripe/internal/fakestripe"
	"source-stripe/internal/testbin"
	"source-stripe/protocol"
)

// badInputKey is the key of every config below: distinctive, so that any
// output repeating it is caught.
const badInputKey = "sk_test_BadInputSecret0123456789"

// cfgJSON is a config for the fake's account with the fields given (nil
// removes one), as JSON.
func cfgJSON(fields map[string]any) string {
	return string(testbin.Config(fakestripe.DefaultAccountID, badInputKey, fields))
}

// badInput is one input the connector must refuse, or (failure "") accept
// with a warning.
type badInput struct {
	name string
	// config, catalog and state are the files' contents; an empty config
	// is a good one, an empty catalog means no --catalog (an incremental
	// catalog of charges when state is set), an empty state no --state.
	config, catalog, state string
	// args replace the file flags, for files that do not exist.
	args []string
	// failure is the failure_type of the one TRACE ERROR; "" means the
	// read succeeds and logs a WARN holding want.
	failure string
	// want is in the message: what is wrong, and what to do about it.
	want string
	// callsStripe: the connector may need Stripe to tell (the account).
	callsStripe bool
}

var badInputs = []badInput{
	// Config. Each one goes through check (FAILED, exit 0) and read (TRACE
	// ERROR, exit 1).
	{name: "config not JSON", config: `{"account_id":"acct_fake","client_secret":"` + badInputKey + `"`, failure: protocol.FailureConfig, want: "the config is not valid JSON"},
	{name: "config empty file", config: " \n", failure: protocol.FailureConfig, want: `the config file is empty: it must be a JSON object like {"account_id": "acct_...", "client_secret": "sk_..."}`},
	{name: "config an array", config: `[]`, failure: protocol.FailureConfig, want: "the config must be a JSON object, got an array"},
	{name: "config null", config: `null`, failure: protocol.FailureConfig, want: "the config must be a JSON object, got null"},
	{name: "config two documents", config: cfgJSON(nil) + cfgJSON(nil), failure: protocol.FailureConfig, want: "the config holds more than one JSON value"},
	{name: "client_secret a number", config: cfgJSON(map[string]any{"client_secret": 42}), failure: protocol.FailureConfig, want: "'client_secret' expected string, but got number"},
	{name: "account_id a boolean", config: cfgJSON(map[string]any{"account_id": true}), failure: protocol.FailureConfig, want: "'account_id' expected string, but got boolean"},
	{name: "lookback a string", config: cfgJSON(map[string]any{"lookback_window_days": "7"}), failure: protocol.FailureConfig, want: "'lookback_window_days' expected integer, but got string"},
	{name: "start_date a number", config: cfgJSON(map[string]any{"start_date": 1700000000}), failure: protocol.FailureConfig, want: "'start_date' expected string, but got number"},
	{name: "follow a string", config: cfgJSON(map[string]any{"follow": "yes"}), failure: protocol.FailureConfig, want: "'follow' expected boolean, but got string"},
	{name: "missing client_secret", config: cfgJSON(map[string]any{"client_secret": nil}), failure: protocol.FailureConfig, want: "a required field is missing: missing properties: 'client_secret'"},
	{name: "missing account_id", config: cfgJSON(map[string]any{"account_id": nil}), failure: protocol.FailureConfig, want: "a required field is missing: missing properties: 'account_id'"},
	{name: "empty account_id", config: cfgJSON(map[string]any{"account_id": "  "}), failure: protocol.FailureConfig, want: "'account_id' is empty: set it to your Stripe account ID (acct_...)"},
	{name: "account_id not an account id", config: cfgJSON(map[string]any{"account_id": "12345"}), failure: protocol.FailureConfig,
		want: `'account_id' must be a Stripe account ID starting with "acct_", got "12345"`},
	{name: "publishable key", config: cfgJSON(map[string]any{"client_secret": "pk_live_BadInputSecret0123456789"}), failure: protocol.FailureConfig, want: "'client_secret' is a publishable key (pk_...), which cannot read data: use a secret key (sk_...) or a restricted key (rk_...)"},
	{name: "empty key", config: cfgJSON(map[string]any{"client_secret": ""}), failure: protocol.FailureConfig, want: "'client_secret' is empty"},
	{name: "key with a line break", config: cfgJSON(map[string]any{"client_secret": badInputKey + "\n2"}), failure: protocol.FailureConfig,
		want: "the API key contains spaces, line breaks or other characters a Stripe key never has: copy 'client_secret' (or STRIPE_API_KEY) again"},
	{name: "not a Stripe key", config: cfgJSON(map[string]any{"client_secret": "hunter2hunter2hunter2"}), failure: protocol.FailureConfig,
		want: "'client_secret' is not a Stripe secret key: it starts with sk_live_, sk_test_, rk_live_ or rk_test_"},
	{name: "key and account swapped", config: cfgJSON(map[string]any{"account_id": badInputKey, "client_secret": "acct_1A2b3C4d5E6f7G8h"}), failure: protocol.FailureConfig,
		want: "'client_secret' is not a Stripe secret key"},
	{name: "start_date in words", config: cfgJSON(map[string]any{"start_date": "yesterday"}), failure: protocol.FailureConfig, want: `'start_date' must be RFC 3339, like "2017-01-25T00:00:00Z", got "yesterday"`},
	{name: "start_date without time", config: cfgJSON(map[string]any{"start_date": "2020-01-01"}), failure: protocol.FailureConfig, want: `'start_date' must be RFC 3339, like "2017-01-25T00:00:00Z", got "2020-01-01"`},
	{name: "start_date impossible day", config: cfgJSON(map[string]any{"start_date": "2021-02-30T00:00:00Z"}), failure: protocol.FailureConfig, want: `'start_date' must be RFC 3339, like "2017-01-25T00:00:00Z", got "2021-02-30T00:00:00Z"`},
	{name: "start_date in the future", config: cfgJSON(map[string]any{"start_date": "2999-01-01T00:00:00Z"}), failure: protocol.FailureConfig,
		want: `'start_date' 2999-01-01T00:00:00Z is in the future: set it to a past date, like "2017-01-25T00:00:00Z"`},
	{name: "negative lookback", config: cfgJSON(map[string]any{"lookback_window_days": -1}), failure: protocol.FailureConfig, want: "'lookback_window_days' must be >= 0 but found -1"},
	{name: "fractional lookback", config: cfgJSON(map[string]any{"lookback_window_days": 1.5}), failure: protocol.FailureConfig, want: "'lookback_window_days' expected integer, but got number"},
	{name: "absurd lookback", config: cfgJSON(map[string]any{"lookback_window_days": 1000000}), failure: protocol.FailureConfig,
		want: "'lookback_window_days' must be <= 365 but found 1000000"},
	{name: "lookback too big to represent", config: `{"account_id":"acct_fake","client_secret":"` + badInputKey + `","lookback_window_days":1e9999999}`, failure: protocol.FailureConfig,
		want: "'lookback_window_days' must be <= 365"},
	{name: "poll_interval in words", config: cfgJSON(map[string]any{"poll_interval": "fast"}), failure: protocol.FailureConfig, want: `'poll_interval' must be a duration of at least 100ms, like "500ms" or "2s", got "fast"`},
	{name: "poll_interval too short", config: cfgJSON(map[string]any{"poll_interval": "10ms"}), failure: protocol.FailureConfig, want: `'poll_interval' must be a duration of at least 100ms, like "500ms" or "2s", got "10ms"`},
	{name: "unknown field (a typo)", config: cfgJSON(map[string]any{"lookback_window_day": 7}), failure: protocol.FailureConfig,
		want: "unknown config field 'lookback_window_day'; the fields are 'account_id', 'client_secret', 'start_date', 'lookback_window_days', 'follow', 'poll_interval'"},
	{name: "config file missing", args: []string{"--config", "/nonexistent/config.json"}, failure: protocol.FailureConfig, want: `cannot read the config file "/nonexistent/config.json": no such file or directory`},

	// Configured catalog.
	{name: "catalog not JSON", catalog: `{"streams":[`, failure: protocol.FailureConfig, want: "the catalog is not a valid configured catalog"},
	{name: "catalog without streams", catalog: `{}`, failure: protocol.FailureConfig, want: `the catalog has no "streams" array`},
	{name: "catalog with no stream", catalog: `{"streams":[]}`, failure: protocol.FailureConfig,
		want: "the catalog selects no streams: select at least one"},
	{name: "catalog unknown stream", catalog: `{"streams":[{"stream":{"name":"chargez"},"sync_mode":"full_refresh"}]}`, failure: protocol.FailureConfig,
		want: `the catalog asks for stream "chargez" (entry 0), which this connector does not have; run discover for the list`},
	{name: "catalog stream without a name", catalog: `{"streams":[{"sync_mode":"full_refresh"}]}`, failure: protocol.FailureConfig, want: `stream "" (entry 0)`},
	{name: "catalog sync mode in capitals", catalog: `{"streams":[{"stream":{"name":"charges"},"sync_mode":"INCREMENTAL"}]}`, failure: protocol.FailureConfig,
		want: `stream "charges" has sync_mode "INCREMENTAL"; use full_refresh or incremental`},
	{name: "catalog unknown sync mode", catalog: `{"streams":[{"stream":{"name":"charges"},"sync_mode":"cdc"}]}`, failure: protocol.FailureConfig, want: `stream "charges" has sync_mode "cdc"; use full_refresh or incremental`},
	{name: "catalog without sync mode", catalog: `{"streams":[{"stream":{"name":"charges"}}]}`, failure: protocol.FailureConfig, want: `stream "charges" has sync_mode ""; use full_refresh or incremental`},
	{name: "catalog sync mode a number", catalog: `{"streams":[{"stream":{"name":"charges"},"sync_mode":1}]}`, failure: protocol.FailureConfig,
		want: `the catalog's streams[0].sync_mode must be a string ("full_refresh" or "incremental")`},
	{name: "catalog entry not an object", catalog: `{"streams":["charges"]}`, failure: protocol.FailureConfig,
		want: `the catalog's streams[0] must be an object like {"stream": {"name": "charges"}, "sync_mode": "incremental"}`},
	{name: "catalog cursor field not the stream's", catalog: `{"streams":[{"stream":{"name":"charges"},"sync_mode":"incremental","cursor_field":["amount"]}]}`, failure: protocol.FailureConfig,
		want: `stream "charges" has the source-defined cursor`},
	{name: "catalog nested cursor field", catalog: `{"streams":[{"stream":{"name":"charges"},"sync_mode":"incremental","cursor_field":["created","seconds"]}]}`, failure: protocol.FailureConfig,
		want: `stream "charges" has the source-defined cursor`},
	// An incremental stream without cursor_field is fine: the cursor is
	// source-defined (discover says so), so platforms may leave it out.
	{name: "catalog lists a stream twice", catalog: `{"streams":[{"stream":{"name":"charges"},"sync_mode":"full_refresh"},{"stream":{"name":"charges"},"sync_mode":"incremental"}]}`, failure: protocol.FailureConfig,
		want: `the catalog lists stream "charges" twice`},
	{name: "catalog file missing", args: []string{"--catalog", "/nonexistent/catalog.json"}, failure: protocol.FailureConfig, want: `cannot read the catalog file "/nonexistent/catalog.json": no such file or directory`},

	// State, read with an incremental catalog of charges.
	{name: "state not JSON", state: `[{"type":"STREAM"`, failure: protocol.FailureConfig, want: "the state is not valid JSON"},
	{name: "state a number", state: `42`, failure: protocol.FailureConfig, want: "the state must be a JSON array of state messages or an object keyed by stream name"},
	{name: "state a string", state: `"charges"`, failure: protocol.FailureConfig, want: "the state must be a JSON array of state messages or an object keyed by stream name"},
	{name: "state entry not an object", state: `[1]`, failure: protocol.FailureConfig,
		want: "state entry 0 must be an AirbyteStateMessage object"},
	{name: "state cursor a string", state: `{"charges":{"created":"2024-01-01"}}`, failure: protocol.FailureConfig, want: `the state of stream "charges" has a 'created' cursor that is not a number of seconds: "2024-01-01"`},
	{name: "state cursor negative", state: `{"charges":{"created":-5}}`, failure: protocol.FailureConfig, want: `the state of stream "charges" has a 'created' cursor out of range: -5 (want whole epoch seconds)`},
	{name: "state cursor absurd", state: `{"charges":{"created":1e15}}`, failure: protocol.FailureConfig, want: `the state of stream "charges" has a 'created' cursor out of range: 1e15 (want whole epoch seconds)`},
	{name: "state cursor in milliseconds", state: `{"charges":{"created":1700000000000}}`, failure: protocol.FailureConfig, want: `the state of stream "charges" has a 'created' cursor out of range: 1700000000000 (want whole epoch seconds)`},
	{name: "state cursor fractional", state: `{"charges":{"created":1700000000.5}}`, failure: protocol.FailureConfig, want: `the state of stream "charges" has a 'created' cursor out of range`},
	{name: "state stream state an array", state: `{"charges":[1700000000]}`, failure: protocol.FailureConfig, want: `the state of stream "charges" must be an object like {"created": 1700000000}`},
	{name: "state from a newer connector", state: `{"charges":{"state_version":99,"created":1}}`, failure: protocol.FailureConfig, want: `the state of stream "charges" has state_version 99, newer than this connector understands`},
	{name: "state version a string", state: `{"charges":{"state_version":"1","created":1}}`, failure: protocol.FailureConfig, want: `the state of stream "charges" has an invalid state_version "1"`},
	{name: "state older format, version 0", state: `{"charges":{"state_version":0,"created":1}}`, failure: protocol.FailureConfig, want: `the state of stream "charges" has an invalid state_version 0`},
	{name: "state of another connector", state: `{"charges":{"updated":1700000000}}`, failure: protocol.FailureConfig,
		want: `the state of stream "charges" has none of this connector's cursors, only 'updated': it was written by another connector; clear the stream's state to read it again from start_date`},
	{name: "state GLOBAL", state: `[{"type":"GLOBAL","global":{"shared_state":{}}}]`, failure: protocol.FailureConfig, want: "state messages of type GLOBAL are not supported: this connector writes per-stream (STREAM) state"},
	{name: "state STREAM without a name", state: `[{"type":"STREAM","stream":{"stream_state":{"created":1}}}]`, failure: protocol.FailureConfig, want: "a STREAM state message has no stream.stream_descriptor.name"},
	{name: "state LEGACY data not an object", state: `[{"type":"LEGACY","data":[1]}]`, failure: protocol.FailureConfig, want: "a LEGACY state message's data must be an object keyed by stream name"},
	{name: "state lists a stream twice", state: `[{"type":"STREAM","stream":{"stream_descriptor":{"name":"charges"},"stream_state":{"created":1}}},{"type":"STREAM","stream":{"stream_descriptor":{"name":"charges"},"stream_state":{"created":1700000000}}}]`,
		failure: protocol.FailureConfig, want: `the state lists stream "charges" twice (entries 0 and 1)`},
	{name: "state file missing", args: []string{"--state", "/nonexistent/state.json"}, failure: protocol.FailureConfig, want: `cannot read the state file "/nonexistent/state.json": no such file or directory`},
	// Platforms keep the state of deselected streams: a warning, not an
	// error, and the read goes on.
	{name: "state of an unknown stream", state: `{"chargez":{"created":1700000000}}`, want: `ignoring the saved state of stream "chargez", which this connector does not have`},
}

// TestBadInput runs every bad input through the binary: each is refused
// with one specific message of the right failure type, without a panic, a
// hang, a request to Stripe or the key in any output.
func TestBadInput(t *testing.T) {
	fake := fakestripe.New(fakestripe.WithKeys(map[string]fakestripe.KeyInfo{badInputKey: {}}))
	t.Cleanup(fake.Close)
	fake.Seed(fakestripe.DefaultDataset().Scale(0.1))
	env := []string{"STRIPE_API_BASE=" + fake.URL()}
	if len(badInputs) < 30 {
		t.Fatalf("%d bad inputs; the issue asks for at least 30", len(badInputs))
	}
	for _, tc := range badInputs {
		t.Run(tc.name, func(t *testing.T) {
			config := tc.config
			if config == "" {
				config = cfgJSON(nil)
			}
			files := []string{"--config", writeFile(t, "config.json", []byte(config))}
			if tc.catalog != "" {
				files = append(files, "--catalog", writeFile(t, "catalog.json", []byte(tc.catalog)))
			} else if tc.state != "" {
				files = append(files, "--catalog", catalogFile(t, protocol.SyncModeIncremental, "charges"))
			} else {
				files = append(files, "--streams", "coupons")
			}
			if tc.state != "" {
				files = append(files, "--state", writeFile(t, "state.json", []byte(tc.state)))
			}
			files = replaceFlags(files, tc.args)
			configOnly := tc.catalog == "" && tc.state == "" && (len(tc.args) == 0 || tc.args[0] == "--config")

			expect(t, func(p *problems) {
				if configOnly && tc.failure != "" {
					fake.ResetRequests()
					check := testbin.Run(t, 20*time.Second, env, "check", "--config", files[1])
					checkBadInput(p, tc, "check", check, fake)
					if s := check.Of(protocol.TypeConnectionStatus); check.ExitCode != 0 || len(s) != 1 || s[0].ConnectionStatus.Status != protocol.StatusFailed ||
						!strings.Contains(s[0].ConnectionStatus.Message, tc.want) {
						p.Errorf("check: exit %d, statuses %s; want one FAILED saying %q", check.ExitCode, statusText(s), tc.want)
					}
				}
				fake.ResetRequests()
				read := testbin.Run(t, 20*time.Second, env, append([]string{"read"}, files...)...)
				checkBadInput(p, tc, "read", read, fake)
				errs := read.Errors()
				if tc.failure == "" {
					warned := slices.ContainsFunc(read.Of(protocol.TypeLog), func(m protocol.Message) bool {
						return m.Log.Level == protocol.LevelWarn && strings.Contains(m.Log.Message, tc.want)
					})
					if read.ExitCode != 0 || len(errs) != 0 || !warned {
						p.Errorf("read: exit %d, errors %+v, warned %v; want success and a WARN saying %q", read.ExitCode, errs, warned, tc.want)
					}
					return
				}
				if read.ExitCode != 1 || len(errs) != 1 || errs[0].FailureType != tc.failure || !strings.Contains(errs[0].Message, tc.want) {
					p.Errorf("read: exit %d, errors %+v; want exit 1 and one %s saying %q", read.ExitCode, errs, tc.failure, tc.want)
				}
				if n := len(read.Records("")); n > 0 {
					p.Errorf("read: %d records despite the bad input", n)
				}
			})
		})
	}
}

// checkBadInput checks what every run must do, whatever the input.
func checkBadInput(p *problems, tc badInput, command string, res testbin.Result, fake *fakestripe.Server) {
	if strings.Contains(res.Stderr, "panic:") || strings.Contains(res.Stderr, "goroutine ") {
		p.Errorf("%s panicked:\n%s", command, res.Stderr)
	}
	if res.ExitCode == 2 {
		p.Errorf("%s exited 2 (usage); stderr:\n%s", command, res.Stderr)
	}
	if leaks(res, badInputKey) {
		p.Errorf("%s: the key appears in the output", command)
	}
	if n := fake.RequestCount(); n > 0 && tc.failure != "" && !tc.callsStripe {
		p.Errorf("%s: %d requests to Stripe before refusing the input; checking it needs none", command, n)
	}
}

// replaceFlags replaces the values of the flags in over, or adds them.
func replaceFlags(args, over []string) []string {
	out := slices.Clone(args)
	for i := 0; i+1 < len(over); i += 2 {
		if j := slices.Index(out, over[i]); j >= 0 {
			out[j+1] = over[i+1]
		} else {
			out = append(out, over[i], over[i+1])
		}
	}
	return out
}

func statusText(msgs []protocol.Message) string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.ConnectionStatus.Status+" "+m.ConnectionStatus.Message)
	}
	return "[" + strings.Join(out, "; ") + "]"
}
