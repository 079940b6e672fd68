package stripeapi

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"
)

type decision struct {
	retry  bool
	reason string
}

// retryDecision says whether a failed attempt is worth another try. status
// is 0 when no response arrived. Only GETs are sent, so a retry never does
// anything twice. The cases, in order:
func retryDecision(status int, header http.Header, err error) decision {
	switch {
	// No response at all: connection refused or reset, DNS, TLS, or our
	// per-request timeout. Nothing was read, so a retry is safe (GET only).
	case status == 0:
		return decision{true, "no response: " + err.Error()}
	// Stripe says explicitly; its word wins over the status code.
	case header.Get("Stripe-Should-Retry") == "true":
		return decision{true, "Stripe-Should-Retry: true"}
	case header.Get("Stripe-Should-Retry") == "false":
		return decision{false, ""}
	// Rate limited: wait (Retry-After when given) and try again; call also
	// slows the pacer, so that every stream sends less. stripe-go does not
	// retry these on its own.
	case status == http.StatusTooManyRequests:
		return decision{true, "rate limited (HTTP 429)"}
	// A lock conflict on Stripe's side; it clears by itself.
	case status == http.StatusConflict:
		return decision{true, "conflict (HTTP 409)"}
	// Stripe or a proxy in front of it failed; these are transient.
	case status == http.StatusInternalServerError, status == http.StatusBadGateway,
		status == http.StatusServiceUnavailable, status == http.StatusGatewayTimeout:
		return decision{true, "server error (HTTP " + strconv.Itoa(status) + ")"}
	// A 2xx that is not JSON at all (an HTML page): a proxy or a wrong
	// STRIPE_API_BASE answered, and will answer the same page again.
	case status < 300 && errors.As(err, new(*ResponseError)):
		return decision{false, ""}
	// A 2xx whose body could not be read or decoded: the connection broke
	// mid-body (reset, EOF) or the body stops mid-JSON. The same request
	// will answer again.
	case status < 300 && err != nil:
		return decision{true, "unreadable response body: " + err.Error()}
	// Our per-request timeout ran out while the body of another status was
	// arriving: the network, not the request, is at fault.
	case errors.Is(err, errTimeout):
		return decision{true, "timed out"}
	}
	// Any other 4xx is the request's fault (bad key, no permission, unknown
	// id, bad parameter): the same request will fail the same way.
	return decision{false, ""}
}

// Backoff bounds: 500 ms doubles per attempt up to 30 s.
const (
	backoffBase = 500 * time.Millisecond
	backoffCap  = 30 * time.Second
)

// backoff is capped exponential backoff with jitter, never shorter than the
// server's Retry-After.
func backoff(attempt int, retryAfter time.Duration) time.Duration {
	d := backoffBase << min(attempt-1, 10)
	if d > backoffCap {
		d = backoffCap
	}
	// Equal jitter: half fixed, half random, so parallel streams that failed
	// together do not retry together.
	d = d/2 + rand.N(d/2+1)
	if retryAfter > d {
		d = retryAfter
	}
	return d
}

func retryAfter(header http.Header) time.Duration {
	if header == nil {
		return 0
	}
	secs, err := strconv.Atoi(header.Get("Retry-After"))
	if err != nil || secs <= 0 {
		return 0
	}
	return min(time.Duration(secs)*time.Second, backoffCap)
}
