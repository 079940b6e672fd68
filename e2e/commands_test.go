package e2e

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"source-stripe/internal/fakestripe"
	"source-stripe/protocol"
)

func TestSpec(t *testing.T) {
	e := newEnv(t)
	res := e.run("spec")
	requireExit(t, res, 0)
	if len(res.Messages) != 1 || res.Messages[0].Type != protocol.TypeSpec {
		t.Fatalf("want one SPEC message, got %d messages", len(res.Messages))
	}
	spec := res.Messages[0].Spec
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft7
	if err := c.AddResource("spec.json", bytes.NewReader(spec.ConnectionSpecification)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Compile("spec.json"); err != nil {
		t.Fatalf("connectionSpecification is not valid Draft 7: %v", err)
	}
	var schema struct {
		Required   []string
		Properties map[string]map[string]any
	}
	json.Unmarshal(spec.ConnectionSpecification, &schema)
	orders := map[float64]string{}
	for name, p := range schema.Properties {
		if p["title"] == nil || p["description"] == nil {
			t.Errorf("%s has no title or description", name)
		}
		for _, banned := range []string{"anyOf", "allOf", "oneOf", "not"} {
			if p[banned] != nil {
				t.Errorf("%s uses %s", name, banned)
			}
		}
		o, _ := p["order"].(float64)
		if other, dup := orders[o]; dup {
			t.Errorf("%s and %s share order %v", name, other, o)
		}
		orders[o] = name
	}
	if schema.Properties["client_secret"]["airbyte_secret"] != true {
		t.Error("client_secret is not marked airbyte_secret")
	}
	if schema.Properties["start_date"]["default"] != "2017-01-25T00:00:00Z" || schema.Properties["lookback_window_days"]["minimum"] != 0.0 {
		t.Errorf("defaults or bounds are off: %v", schema.Properties)
	}
}

func TestCheck(t *testing.T) {
	e := newEnv(t, fakestripe.WithKeys(map[string]fakestripe.KeyInfo{
		fakestripe.DefaultKey: {},
		"rk_test_limited":     {Kinds: []string{fakestripe.KindCharge}},
	}), fakestripe.WithConnectedAccounts("acct_connected"))
	for _, tc := range []struct {
		name   string
		config map[string]any
		status string
		msg    string
	}{
		{"good", nil, protocol.StatusSucceeded, ""},
		{"bad key", map[string]any{"client_secret": "sk_test_wrong_key_123"}, protocol.StatusFailed, "the API key is invalid or revoked"},
		{"publishable key", map[string]any{"client_secret": "pk_test_123"}, protocol.StatusFailed, "publishable key"},
		{"malformed start_date", map[string]any{"start_date": "yesterday"}, protocol.StatusFailed, `'start_date' must be RFC 3339, like "2017-01-25T00:00:00Z", got "yesterday"`},
		{"missing account_id", map[string]any{"account_id": nil}, protocol.StatusFailed, "account_id"},
		{"other account", map[string]any{"account_id": "acct_someone_else"}, protocol.StatusFailed, "cannot read account acct_someone_else"},
		{"connected account", map[string]any{"account_id": "acct_connected"}, protocol.StatusSucceeded, ""},
		{"restricted key", map[string]any{"client_secret": "rk_test_limited"}, protocol.StatusSucceeded, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := map[string]any{}
			for k, v := range tc.config {
				cfg[k] = v
			}
			path := e.config(cfg)
			if v, ok := tc.config["account_id"]; ok && v == nil {
				raw, _ := json.Marshal(map[string]any{"client_secret": fakestripe.DefaultKey})
				path = writeConfig(t, raw)
			}
			res := e.run("check", "--config", path)
			requireExit(t, res, 0)
			statuses := res.Of(protocol.TypeConnectionStatus)
			if len(statuses) != 1 {
				t.Fatalf("want exactly one CONNECTION_STATUS, got %d", len(statuses))
			}
			got := statuses[0].ConnectionStatus
			if got.Status != tc.status || !strings.Contains(got.Message, tc.msg) {
				t.Fatalf("got %s %q, want %s containing %q", got.Status, got.Message, tc.status, tc.msg)
			}
			if key, _ := tc.config["client_secret"].(string); key != "" {
				requireNoSecret(t, res, key)
			}
		})
	}
}

func writeConfig(t *testing.T, raw []byte) string {
	return writeFile(t, "config.json", raw)
}

func TestDiscover(t *testing.T) {
	e := newEnv(t)
	res := e.run("discover", "--config", e.config(nil))
	requireExit(t, res, 0)
	cats := res.Of(protocol.TypeCatalog)
	if len(cats) != 1 || len(res.Messages) != 1 {
		t.Fatalf("want one CATALOG and nothing else, got %d messages", len(res.Messages))
	}
	var names []string
	for _, s := range cats[0].Catalog.Streams {
		names = append(names, s.Name)
		if len(s.SourceDefinedPrimaryKey) != 1 || s.SourceDefinedPrimaryKey[0][0] != "id" {
			t.Errorf("%s: primary key %v", s.Name, s.SourceDefinedPrimaryKey)
		}
	}
	for stream := range kindOf {
		if !strings.Contains(","+strings.Join(names, ",")+",", ","+stream+",") {
			t.Errorf("stream %s is missing", stream)
		}
	}
	if len(names) != len(kindOf) {
		t.Errorf("want %d streams, got %d: %v", len(kindOf), len(names), names)
	}
	// discover does not need Stripe: it must not call it.
	if n := e.fake.RequestCount(); n != 0 {
		t.Errorf("discover made %d requests", n)
	}
}

func TestBadConfigIsATraceError(t *testing.T) {
	e := newEnv(t)
	for _, args := range [][]string{
		{"discover", "--config", writeConfig(t, []byte(`{"account_id":`))},
		{"read", "--config", writeConfig(t, []byte(`{"account_id":"acct_1","client_secret":"sk_test_x","lookback_window_days":-2}`))},
		{"read", "--config", "/nonexistent/config.json"},
		{"read", "--config", e.config(nil), "--catalog", writeFile(t, "c.json", []byte(`{"streams":[{"stream":{"name":"nope"},"sync_mode":"full_refresh"}]}`))},
		{"read", "--config", e.config(nil), "--state", writeFile(t, "s.json", []byte(`{"charges":{"created":"yesterday"}}`))},
		{"read", "--no-such-flag"},
	} {
		res := e.run(args...)
		requireExit(t, res, 1)
		errs := res.Errors()
		if len(errs) != 1 || errs[0].FailureType != protocol.FailureConfig {
			t.Errorf("%v: want one config_error TRACE, got %+v", args, errs)
		}
	}
}
