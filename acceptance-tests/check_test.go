package acceptance

import (
	"strings"
	"testing"

	"source-stripe/internal/fakestripe"
	"source-stripe/internal/testbin"
	"source-stripe/protocol"
)

// requireOneStatus: check exits 0 (a bad config is not a crash), prints
// exactly one CONNECTION_STATUS and no TRACE ERROR, and returns the status.
func requireOneStatus(t *testing.T, res testbin.Result) *protocol.ConnectionStatus {
	t.Helper()
	requireExit(t, res, 0)
	if errs := res.Errors(); len(errs) > 0 {
		t.Fatalf("check printed TRACE ERRORs: %s", describeErrors(errs))
	}
	statuses := res.Of(protocol.TypeConnectionStatus)
	if len(statuses) != 1 {
		t.Fatalf("want exactly one CONNECTION_STATUS, got %d", len(statuses))
	}
	return statuses[0].ConnectionStatus
}

func TestCheck(t *testing.T) {
	t.Parallel()
	t.Run("stripe-mock succeeds", func(t *testing.T) {
		t.Parallel()
		p, _ := mockPeer(t)
		got := requireOneStatus(t, p.run("check", "--config", p.config(nil)))
		if got.Status != protocol.StatusSucceeded {
			t.Fatalf("check against stripe-mock: %s %q", got.Status, got.Message)
		}
	})

	fake, _ := fakePeer(t, fakestripe.DefaultDataset())
	for _, tc := range []struct {
		name   string
		config map[string]any
		status string
		// mention is what a FAILED message must name for the user to act.
		mention string
	}{
		{"fake succeeds", nil, protocol.StatusSucceeded, ""},
		// The fake, not stripe-mock: stripe-mock accepts any sk_test_ key.
		{"bad key fails", map[string]any{"client_secret": "sk_test_not_a_real_key_0123"}, protocol.StatusFailed, "key"},
		{"malformed start_date fails", map[string]any{"start_date": "2017-13-45"}, protocol.StatusFailed, "start_date"},
		{"missing account_id fails", map[string]any{"account_id": nil}, protocol.StatusFailed, "account_id"},
		{"missing client_secret fails", map[string]any{"client_secret": nil}, protocol.StatusFailed, "client_secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fake := fake.on(t)
			res := fake.run("check", "--config", fake.config(tc.config))
			got := requireOneStatus(t, res)
			if got.Status != tc.status || !strings.Contains(got.Message, tc.mention) {
				t.Fatalf("got %s %q, want %s naming %q", got.Status, got.Message, tc.status, tc.mention)
			}
			if key, _ := tc.config["client_secret"].(string); key != "" {
				requireNoSecret(t, res, key)
			}
		})
	}
}
