package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"testing"
	"time"

	"source-stripe/internal/jsontree"
	"source-stripe/protocol"
)

// maxLookbackDays is the most days a time.Duration holds: a longer lookback
// overflows when the reader turns it into a duration, and then reads less,
// not more.
const maxLookbackDays = int64((1<<63 - 1) / int64(24*time.Hour))

var configSeeds = []string{
	// Found by fuzzing: integral numbers in other notations, and numbers
	// beyond what the schema validator can represent.
	`{"account_id":"acct_1","client_secret":"sk_test_FuzzKey0123456789","lookback_window_days":1e2}`,
	`{"account_id":"acct_1","client_secret":"sk_test_FuzzKey0123456789","lookback_window_days":7.0}`,
	`{"account_id":"acct_1","client_secret":"sk_test_FuzzKey0123456789","lookback_window_days":1e9999999}`,
	`{"account_id":"acct_1","client_secret":"sk_test_FuzzKey0123456789","lookback_window_days":1000000}`,
	`{"account_id":"acct_1","client_secret":"sk_test_FuzzKey0123456789"}`,
	`{"account_id":"acct_1","client_secret":"rk_live_FuzzKey0123456789","start_date":"2020-01-02T03:04:05Z","lookback_window_days":3}`,
	`{"account_id":"acct_1","client_secret":"sk_test_FuzzKey0123456789","start_date":"2020-01-02T03:04:05.123+02:00"}`,
	`{"account_id":"acct_1","client_secret":"sk_test_FuzzKey0123456789","start_date":"yesterday"}`,
	`{"account_id":"acct_1","client_secret":"sk_test_FuzzKey0123456789","start_date":"2020-13-45T25:61:61Z"}`,
	`{"account_id":"acct_1","client_secret":"sk_test_FuzzKey0123456789","lookback_window_days":-1}`,
	`{"account_id":"acct_1","client_secret":"sk_test_FuzzKey0123456789","lookback_window_days":"7"}`,
	`{"account_id":"acct_1","client_secret":"sk_test_FuzzKey0123456789","unknown":{"deep":[1,2,{"x":null}]}}`,
	`{"account_id":"acct_1","client_secret":"pk_test_FuzzKey0123456789"}`,
	`{"account_id":"acct_1","client_secret":"   "}`,
	`{"account_id":"sk_test_FuzzKey0123456789","client_secret":5}`,
	`{"account_id":"acct_1"}`,
	`{"client_secret":"sk_test_FuzzKey0123456789"}`,
	`{"account_id":"acct_1","client_secret":"sk_test_FuzzKey0123456789"} {}`,
	`{"account_id":"acct_1","client_secret":"sk_test_FuzzKey0123456789","account_id":7}`,
	`{"account_id":"acct_1","client_secret":"sk_test_Fuzz\u004bey0123456789"}`,
	`[]`, `null`, `"sk_test_FuzzKey0123456789"`, `1e400`, ``, `{`, "\xff\xfe",
}

// FuzzParse: any config document is either accepted as a usable config that
// says what the document says, or refused with a config_error that does not
// repeat the key.
//
//	go test ./spec -run '^$' -fuzz FuzzParse -fuzztime 20s
func FuzzParse(f *testing.F) {
	for _, s := range configSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, problem := range checkParse(raw) {
			t.Error(problem)
		}
	})
}

var keyShaped = regexp.MustCompile(`^[sr]k_(test|live)_[0-9A-Za-z]{4,}$`)

// checkParse returns what is wrong with Parse's answer to raw.
func checkParse(raw []byte) (problems []string) {
	var cfg Config
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				problems = append(problems, fmt.Sprintf("Parse panicked: %v", r))
			}
		}()
		cfg, err = Parse(raw)
	}()
	if len(problems) > 0 {
		return problems
	}
	doc, strs := decode(raw)
	if err != nil {
		var perr *protocol.Error
		if !errors.As(err, &perr) || perr.FailureType != protocol.FailureConfig || perr.Message == "" {
			return []string{fmt.Sprintf("want a config_error with a message, got %T %v", err, err)}
		}
		// The key, when it is one and appears nowhere else in the document,
		// must not come back in the error.
		if obj, ok := doc.(map[string]any); ok {
			if key, ok := obj["client_secret"].(string); ok && keyShaped.MatchString(strings.TrimSpace(key)) && countIn(strs, key) == 1 {
				if strings.Contains(err.Error(), strings.TrimSpace(key)) {
					problems = append(problems, fmt.Sprintf("the error repeats the key: %v", err))
				}
			}
		}
		return problems
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return []string{fmt.Sprintf("accepted a document that is not an object: %.60q", raw)}
	}
	if cfg.APIKey == "" || strings.HasPrefix(cfg.APIKey, "pk_") || cfg.APIKey != strings.TrimSpace(cfg.APIKey) {
		problems = append(problems, fmt.Sprintf("accepted the key %q", cfg.APIKey))
	}
	if cfg.AccountID == "" {
		problems = append(problems, "accepted an empty account_id")
	}
	if cfg.StartDate.IsZero() || cfg.StartDate.Location() != time.UTC {
		problems = append(problems, fmt.Sprintf("start date %v", cfg.StartDate))
	}
	if int64(cfg.LookbackWindowDays) < 0 || int64(cfg.LookbackWindowDays) > maxLookbackDays {
		problems = append(problems, fmt.Sprintf("accepted 'lookback_window_days' %d, which overflows a duration (at most %d days)", cfg.LookbackWindowDays, maxLookbackDays))
	}
	if n, ok := obj["lookback_window_days"].(json.Number); ok {
		written, _, err := big.ParseFloat(n.String(), 10, 200, big.ToNearestEven)
		if err != nil || written.Cmp(new(big.Float).SetInt64(int64(cfg.LookbackWindowDays))) != 0 {
			problems = append(problems, fmt.Sprintf("'lookback_window_days' %s was read as %d", n, cfg.LookbackWindowDays))
		}
	}
	return problems
}

// decode decodes raw as Parse does and lists every string in it, keys too.
func decode(raw []byte) (any, []string) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	if dec.Decode(&doc) != nil {
		return nil, nil
	}
	return doc, jsontree.Strings(nil, doc)
}

func countIn(strs []string, s string) int {
	n := 0
	for _, x := range strs {
		n += strings.Count(x, strings.TrimSpace(s))
	}
	return n
}
