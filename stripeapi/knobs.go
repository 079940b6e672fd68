package stripeapi

import (
	"strconv"
	"time"

	"source-stripe/protocol"
)

// Environment variables that tune the client, for tests and for people on
// unusual networks; the config's max_requests_per_second wins over the
// rate one.
const (
	EnvBaseURL           = "STRIPE_API_BASE"
	EnvMaxAttempts       = "SOURCE_STRIPE_MAX_ATTEMPTS"
	EnvRequestTimeout    = "SOURCE_STRIPE_REQUEST_TIMEOUT"
	EnvRequestsPerSecond = "SOURCE_STRIPE_REQUESTS_PER_SECOND"
)

// OptionsFromEnv fills opts from the environment and the config's rate
// (0 when unset): base URL, attempts, timeout, and the request budget, which
// defaults to DefaultRate of the key.
func OptionsFromEnv(getenv func(string) string, opts Options, configRate float64) (Options, error) {
	opts.BaseURL = getenv(EnvBaseURL)
	if v := getenv(EnvMaxAttempts); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return opts, protocol.ConfigErrorf("%s must be a whole number of attempts, at least 1, got %q", EnvMaxAttempts, v)
		}
		opts.MaxAttempts = n
	}
	if v := getenv(EnvRequestTimeout); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return opts, protocol.ConfigErrorf("%s must be a duration like \"30s\", got %q", EnvRequestTimeout, v)
		}
		opts.RequestTimeout = d
	}
	opts.RequestsPerSecond = DefaultRate(opts.APIKey)
	if v := getenv(EnvRequestsPerSecond); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r < 0 {
			return opts, protocol.ConfigErrorf("%s must be a number of requests per second (0: unpaced until Stripe answers 429), got %q", EnvRequestsPerSecond, v)
		}
		opts.RequestsPerSecond = r
	}
	if configRate > 0 {
		opts.RequestsPerSecond = configRate
	}
	return opts, nil
}
