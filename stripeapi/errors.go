package stripeapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	stripe "github.com/stripe/stripe-go/v76"

	"source-stripe/protocol"
)

// APIError is a request that failed for good: Stripe answered with an error,
// or retries ran out. Its Error text never contains the API key.
type APIError struct {
	Path      string
	Status    int // 0 when no HTTP response arrived
	Type      string
	Code      string
	Message   string
	RequestID string
	// Attempts is set when the request was retryable but retries ran out.
	Attempts int
	Err      error
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s", e.Path)
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d", e.Status)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	} else if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request %s)", e.RequestID)
	}
	if e.Attempts > 0 {
		fmt.Fprintf(&b, " after %d attempts", e.Attempts)
	}
	return b.String()
}

func (e *APIError) Unwrap() error { return e.Err }

// Transient reports whether the failure may go away on a later run
// (rate limits, server errors, network trouble).
func (e *APIError) Transient() bool { return e.Attempts > 0 }

// ResponseError is a response that is not what Stripe's API promises.
type ResponseError struct {
	Path    string
	Problem string
}

func (e *ResponseError) Error() string { return fmt.Sprintf("GET %s: %s", e.Path, e.Problem) }

func newAPIError(path string, status int, header http.Header, err error) *APIError {
	e := &APIError{Path: path, Status: status, Err: err}
	if header != nil {
		e.RequestID = header.Get("Request-Id")
	}
	var serr *stripe.Error
	if errors.As(err, &serr) {
		e.Type, e.Code, e.Message = string(serr.Type), string(serr.Code), serr.Msg
		if serr.HTTPStatusCode != 0 {
			e.Status = serr.HTTPStatusCode
		}
		if serr.RequestID != "" {
			e.RequestID = serr.RequestID
		}
		e.Err = nil // serr's own text is a JSON dump; Message says it better
	}
	return e
}

// StatusOf returns the HTTP status of a failed request, or 0.
func StatusOf(err error) int {
	var e *APIError
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// Classify maps a failed request to what the user must hear, once for the
// whole connector. stream names the stream that failed ("" for check); a
// failure that concerns every stream (an invalid key) leaves Stream empty so
// that the caller stops the whole run.
func Classify(err error, stream string) *protocol.Error {
	var perr *protocol.Error
	if errors.As(err, &perr) {
		return perr
	}
	var apiErr *APIError
	if !errors.As(err, &apiErr) {
		var respErr *ResponseError
		if errors.As(err, &respErr) {
			return &protocol.Error{FailureType: protocol.FailureTransient, Stream: stream, Err: err,
				Message: "Stripe sent a malformed response" + forStream(stream) + "; the next sync retries it"}
		}
		return &protocol.Error{FailureType: protocol.FailureSystem, Stream: stream, Err: err,
			Message: "reading" + forStream(stream) + " failed"}
	}
	switch {
	case apiErr.Status == http.StatusUnauthorized:
		return &protocol.Error{FailureType: protocol.FailureConfig, Err: err,
			Message: "the API key is invalid or revoked: check 'client_secret' (Stripe dashboard > Developers > API keys)"}
	case apiErr.Status == http.StatusForbidden:
		return &protocol.Error{FailureType: protocol.FailureConfig, Stream: stream, Err: err,
			Message: "the API key is not allowed to read" + forStream(stream) + ": give the restricted key read access to it (" + apiErr.Message + ")"}
	case apiErr.Transient(), apiErr.Status == 0:
		return &protocol.Error{FailureType: protocol.FailureTransient, Stream: stream, Err: err,
			Message: "Stripe kept failing" + forStream(stream) + "; the next sync resumes from the last checkpoint"}
	case apiErr.Status == http.StatusTooManyRequests:
		return &protocol.Error{FailureType: protocol.FailureTransient, Stream: stream, Err: err,
			Message: "Stripe's rate limit" + forStream(stream) + " did not clear; the next sync resumes from the last checkpoint"}
	}
	return &protocol.Error{FailureType: protocol.FailureSystem, Stream: stream, Err: err,
		Message: "Stripe rejected a request" + forStream(stream)}
}

func forStream(stream string) string {
	if stream == "" {
		return ""
	}
	return " stream " + stream
}
