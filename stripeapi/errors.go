package stripeapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	stripe "github.com/stripe/stripe-go/v76"

	"source-stripe/protocol"
)

// APIError is a request that failed for good: Stripe answered with an error,
// or retries ran out. Its Error text never contains the API key, even when
// the server echoed it.
type APIError struct {
	Path      string
	Status    int // 0 when no HTTP response arrived
	Type      string
	Code      string
	Param     string // the request parameter Stripe blames, if any
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

// ResponseError is a response that is not what Stripe's API promises: not
// JSON, not a list, or a page that pagination cannot go on from.
type ResponseError struct {
	Path      string
	Problem   string
	RequestID string
}

func (e *ResponseError) Error() string {
	if e.RequestID != "" {
		return fmt.Sprintf("GET %s: %s (request %s)", e.Path, e.Problem, e.RequestID)
	}
	return fmt.Sprintf("GET %s: %s", e.Path, e.Problem)
}

// maxErrorText bounds the text of an error that quotes a response body:
// stripe-go quotes up to 500 bytes of a body it cannot decode, and a whole
// error body without an "error" object.
const maxErrorText = 300

func (c *Client) newAPIError(path string, status int, header http.Header, err error) *APIError {
	e := &APIError{Path: path, Status: status}
	if header != nil {
		e.RequestID = header.Get("Request-Id")
	}
	var serr *stripe.Error
	if errors.As(err, &serr) {
		e.Type, e.Code, e.Param, e.Message = string(serr.Type), string(serr.Code), serr.Param, c.redact(clip(serr.Msg))
		if serr.HTTPStatusCode != 0 {
			e.Status = serr.HTTPStatusCode
		}
		if serr.RequestID != "" {
			e.RequestID = serr.RequestID
		}
		// serr's own text is a JSON dump; Message says it better.
	} else if err != nil {
		e.Err = &redactedError{text: c.redact(clip(err.Error())), err: err}
	}
	return e
}

// redactedError is an error from below (stripe-go, net/http) whose text has
// been clipped and cleared of the key: a server may echo anything back.
type redactedError struct {
	text string
	err  error
}

func (e *redactedError) Error() string { return e.text }
func (e *redactedError) Unwrap() error { return e.err }

// redact masks the client's key in s, also as %q quotes it, and anything
// shaped like a Stripe key, for any text that may quote what a server sent.
func (c *Client) redact(s string) string {
	if key := c.opts.APIKey; len(key) >= 4 {
		quoted := strconv.Quote(key)
		s = strings.ReplaceAll(s, key, protocol.MaskSecret(key))
		s = strings.ReplaceAll(s, quoted[1:len(quoted)-1], protocol.MaskSecret(key))
	}
	return protocol.MaskKeys(s)
}

func clip(s string) string {
	if len(s) <= maxErrorText {
		return s
	}
	cut := maxErrorText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// AnchorGone reports whether a list request failed because the object its
// starting_after names no longer exists: Stripe answers resource_missing
// when that object was deleted between two pages.
func AnchorGone(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Code == "resource_missing" && e.Param == "starting_after"
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
				Message: "Stripe sent a malformed response" + forStream(" for", stream) + requestOf(respErr.RequestID) + ": " + respErr.Problem + "; the next sync retries it"}
		}
		return &protocol.Error{FailureType: protocol.FailureSystem, Stream: stream, Err: err,
			Message: "reading" + forStream("", stream) + " failed"}
	}
	switch {
	case apiErr.Status == http.StatusUnauthorized:
		return &protocol.Error{FailureType: protocol.FailureConfig, Err: err,
			Message: "the API key is invalid or revoked: check 'client_secret' (Stripe dashboard > Developers > API keys)"}
	case apiErr.Status == http.StatusForbidden:
		return &protocol.Error{FailureType: protocol.FailureConfig, Stream: stream, Err: err,
			Message: "the API key is not allowed to read" + forStream("", stream) + ": give the restricted key read access to it (" + apiErr.Message + ")"}
	case apiErr.Transient(), apiErr.Status == 0:
		return &protocol.Error{FailureType: protocol.FailureTransient, Stream: stream, Err: err,
			Message: "Stripe kept failing" + forStream(" for", stream) + " (" + apiErr.outcome() + "); the next sync resumes from the last checkpoint"}
	case apiErr.Status == http.StatusTooManyRequests:
		return &protocol.Error{FailureType: protocol.FailureTransient, Stream: stream, Err: err,
			Message: "Stripe's rate limit" + forStream(" for", stream) + " did not clear (" + apiErr.outcome() + "); the next sync resumes from the last checkpoint"}
	}
	return &protocol.Error{FailureType: protocol.FailureSystem, Stream: stream, Err: err,
		Message: "Stripe rejected a request" + forStream(" for", stream) + " (" + apiErr.outcome() + ")"}
}

// outcome sums up how the request ended, for a person who may have to ask
// Stripe about it: "HTTP 503, request req_123, 8 attempts".
func (e *APIError) outcome() string {
	parts := []string{"no response"}
	if e.Status != 0 {
		parts[0] = fmt.Sprintf("HTTP %d", e.Status)
	}
	if e.RequestID != "" {
		parts = append(parts, "request "+e.RequestID)
	}
	if e.Attempts > 0 {
		parts = append(parts, fmt.Sprintf("%d attempts", e.Attempts))
	}
	return strings.Join(parts, ", ")
}

func requestOf(id string) string {
	if id == "" {
		return ""
	}
	return " (request " + id + ")"
}

// forStream names the stream, after a preposition: forStream(" for",
// "charges") is " for stream charges"; nothing when stream is "".
func forStream(preposition, stream string) string {
	if stream == "" {
		return ""
	}
	return preposition + " stream " + stream
}
