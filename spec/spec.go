// Package spec owns the connector's configuration: the JSON schema that
// `spec` prints, and the parsing and validation of a config file.
package spec

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v5"

	"source-stripe/protocol"
)

// ConnectionSpecification is the Draft-7 schema of the config.
//
//go:embed connection_spec.json
var ConnectionSpecification []byte

// DocumentationURL is where a person reads how to set the connector up.
const DocumentationURL = "https://github.com/source-stripe/source-stripe#readme"

// DefaultStartDate is start_date when a config does not give one.
var DefaultStartDate = time.Date(2017, 1, 25, 0, 0, 0, 0, time.UTC)

// Config is a validated connector configuration.
type Config struct {
	// AccountID is the Stripe account to read; empty when the key came from
	// the environment and the account is whatever the key belongs to.
	AccountID string
	// APIKey is the secret key. Never print or log it.
	APIKey             string
	StartDate          time.Time
	LookbackWindowDays int
	// Follow keeps the read running after the backfill, emitting changes
	// as Stripe reports them.
	Follow bool
	// PollInterval is the wait between two reads of events when following.
	PollInterval time.Duration
	// MaxRequestsPerSecond caps the request rate; 0 means the default for
	// the key's mode.
	MaxRequestsPerSecond float64
}

// DefaultPollInterval is poll_interval when a config does not give one.
const DefaultPollInterval = 500 * time.Millisecond

// minPollInterval keeps a follower from spending the account's rate limit
// on empty polls.
const minPollInterval = 100 * time.Millisecond

// Spec is the SPEC message payload.
func Spec() *protocol.Spec {
	return &protocol.Spec{
		DocumentationURL:              DocumentationURL,
		ConnectionSpecification:       ConnectionSpecification,
		SupportsIncremental:           true,
		SupportedDestinationSyncModes: []string{"overwrite", "append", "append_dedup"},
	}
}

var schema = mustCompile()

// properties lists the config's fields in the spec's order, with their
// maximum when they have one.
var properties = func() []property {
	var spec struct {
		Properties map[string]struct {
			Order   int      `json:"order"`
			Maximum *float64 `json:"maximum"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(ConnectionSpecification, &spec); err != nil {
		panic(err)
	}
	out := make([]property, 0, len(spec.Properties))
	for name, p := range spec.Properties {
		out = append(out, property{name: name, order: p.Order, maximum: p.Maximum})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].order < out[j].order })
	return out
}()

type property struct {
	name    string
	order   int
	maximum *float64
}

// checkFields refuses fields the spec does not define (a typo would
// otherwise silently drop a setting) and numbers too large to be anything
// but a mistake, before the schema sees them: the schema validator fails on
// numbers beyond float64.
func checkFields(obj map[string]any) error {
	known := map[string]*property{}
	var names []string
	for i := range properties {
		known[properties[i].name] = &properties[i]
		names = append(names, "'"+properties[i].name+"'")
	}
	var unknown []string
	for name := range obj {
		if known[name] == nil {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return protocol.ConfigErrorf("unknown config field '%s'; the fields are %s", strings.Join(unknown, "', '"), strings.Join(names, ", "))
	}
	for name, v := range obj {
		n, ok := v.(json.Number)
		if !ok {
			continue
		}
		if _, err := strconv.ParseFloat(n.String(), 64); err != nil {
			if max := known[name].maximum; max != nil {
				return protocol.ConfigErrorf("'%s' must be <= %v but found %s", name, *max, n)
			}
			return protocol.ConfigErrorf("'%s' is out of range: %s", name, n)
		}
	}
	return nil
}

func mustCompile() *jsonschema.Schema {
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft7
	c.AssertFormat = true
	if err := c.AddResource("config.json", bytes.NewReader(ConnectionSpecification)); err != nil {
		panic(err)
	}
	return c.MustCompile("config.json")
}

// Load reads and validates the config file at path.
func Load(path string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, protocol.ConfigErrorf("cannot read the config file %q: %v", path, errors.Unwrap(err))
	}
	return Parse(raw)
}

// FromEnvironment builds a config from a bare API key, for people running
// the connector by hand: every other field takes its default.
func FromEnvironment(apiKey string) (Config, error) {
	if err := checkKey(apiKey, "STRIPE_API_KEY"); err != nil {
		return Config{}, err
	}
	return Config{APIKey: apiKey, StartDate: DefaultStartDate, PollInterval: DefaultPollInterval}, nil
}

// Parse validates a config document against ConnectionSpecification and
// returns it. Every error is a config_error that names the field and says
// what a valid value looks like.
func Parse(raw []byte) (Config, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return Config{}, protocol.ConfigErrorf(`the config file is empty: it must be a JSON object like {"account_id": "acct_...", "client_secret": "sk_..."}`)
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return Config{}, protocol.ConfigErrorf("the config is not valid JSON: %v", err)
	}
	if dec.More() {
		return Config{}, protocol.ConfigErrorf("the config holds more than one JSON value")
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return Config{}, protocol.ConfigErrorf("the config must be a JSON object, got %s", jsonKind(doc))
	}
	if err := checkFields(obj); err != nil {
		return Config{}, err
	}
	if err := schema.Validate(doc); err != nil {
		return Config{}, describe(err, obj)
	}

	cfg := Config{StartDate: DefaultStartDate, PollInterval: DefaultPollInterval}
	cfg.AccountID = strings.TrimSpace(obj["account_id"].(string))
	cfg.APIKey = strings.TrimSpace(obj["client_secret"].(string))
	if cfg.AccountID == "" {
		return Config{}, protocol.ConfigErrorf("'account_id' is empty: set it to your Stripe account ID (acct_...)")
	}
	// The key first: a key pasted into account_id is also a key missing.
	if err := checkKey(cfg.APIKey, "'client_secret'"); err != nil {
		return Config{}, err
	}
	if !strings.HasPrefix(cfg.AccountID, "acct_") {
		return Config{}, protocol.ConfigErrorf("'account_id' must be a Stripe account ID starting with \"acct_\", got %q", cfg.AccountID)
	}
	if s, ok := obj["start_date"].(string); ok {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return Config{}, startDateError(s)
		}
		if t.After(time.Now()) {
			return Config{}, protocol.ConfigErrorf("'start_date' %s is in the future: set it to a past date, like \"2017-01-25T00:00:00Z\"", s)
		}
		cfg.StartDate = t.UTC()
	}
	if n, ok := obj["lookback_window_days"].(json.Number); ok {
		days, _ := n.Float64() // the schema checked it is a whole number in [0, 365]; 1e2 and 7.0 are too
		cfg.LookbackWindowDays = int(days)
	}
	cfg.Follow, _ = obj["follow"].(bool)
	if n, ok := obj["max_requests_per_second"].(json.Number); ok {
		cfg.MaxRequestsPerSecond, _ = n.Float64() // the schema checked it is a positive number
	}
	if s, ok := obj["poll_interval"].(string); ok {
		d, err := ParsePollInterval(s)
		if err != nil {
			return Config{}, err
		}
		cfg.PollInterval = d
	}
	return cfg, nil
}

// ParsePollInterval reads a poll interval such as "500ms" or "2s".
func ParsePollInterval(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < minPollInterval {
		return 0, protocol.ConfigErrorf("'poll_interval' must be a duration of at least %s, like \"500ms\" or \"2s\", got %q", minPollInterval, s)
	}
	return d, nil
}

// keyPrefixes are the keys that can read: secret and restricted, live and
// test.
var keyPrefixes = []string{"sk_live_", "sk_test_", "rk_live_", "rk_test_"}

func checkKey(key, field string) error {
	switch {
	case key == "":
		return protocol.ConfigErrorf("%s is empty: set it to a Stripe secret key (sk_...) or restricted key (rk_...)", field)
	case strings.HasPrefix(key, "pk_"):
		return protocol.ConfigErrorf("%s is a publishable key (pk_...), which cannot read data: use a secret key (sk_...) or a restricted key (rk_...)", field)
	case !slices.ContainsFunc(keyPrefixes, func(p string) bool { return strings.HasPrefix(key, p) }):
		return protocol.ConfigErrorf("%s is not a Stripe secret key: it starts with sk_live_, sk_test_, rk_live_ or rk_test_ (Stripe dashboard > Developers > API keys)", field)
	}
	return nil
}

func startDateError(got string) error {
	return protocol.ConfigErrorf("'start_date' must be RFC 3339, like \"2017-01-25T00:00:00Z\", got %q", got)
}

// describe turns a schema violation into one sentence per broken field.
func describe(err error, obj map[string]any) error {
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return protocol.ConfigErrorf("the config is invalid: %v", err)
	}
	var msgs []string
	for _, leaf := range Leaves(verr) {
		field := strings.TrimPrefix(leaf.InstanceLocation, "/")
		keyword := leaf.KeywordLocation[strings.LastIndex(leaf.KeywordLocation, "/")+1:]
		switch {
		case field == "start_date" && (keyword == "format" || keyword == "pattern"):
			got, _ := obj["start_date"].(string)
			msgs = append(msgs, startDateError(got).Error())
		case field == "poll_interval" && keyword == "pattern":
			got, _ := obj["poll_interval"].(string)
			_, err := ParsePollInterval("bad")
			msgs = append(msgs, strings.Replace(err.Error(), `"bad"`, fmt.Sprintf("%q", got), 1))
		case keyword == "required":
			msgs = append(msgs, "a required field is missing: "+leaf.Message)
		case field == "":
			msgs = append(msgs, leaf.Message)
		default:
			msgs = append(msgs, fmt.Sprintf("'%s' %s", field, leaf.Message))
		}
	}
	sort.Strings(msgs)
	msgs = dedupe(msgs)
	return protocol.ConfigErrorf("the config is invalid: %s", strings.Join(msgs, "; "))
}

// Leaves returns the errors at the bottom of a validation error's tree:
// the specific problems, each with its instance location.
func Leaves(e *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return []*jsonschema.ValidationError{e}
	}
	var out []*jsonschema.ValidationError
	for _, c := range e.Causes {
		out = append(out, Leaves(c)...)
	}
	return out
}

func dedupe(sorted []string) []string {
	out := sorted[:0]
	for i, s := range sorted {
		if i == 0 || s != sorted[i-1] {
			out = append(out, s)
		}
	}
	return out
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return fmt.Sprintf("%T", v)
}
