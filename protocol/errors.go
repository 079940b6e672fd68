package protocol

import (
	"errors"
	"fmt"
)

// Error is a failure a person has to hear about: what went wrong and what to
// do, plus whose problem it is (FailureType). main turns it into a TRACE
// ERROR in one place.
type Error struct {
	FailureType string
	// Message is for the user: what went wrong and what to do about it.
	Message string
	// Stream names the stream that failed, if the failure is a stream's.
	Stream string
	// Err is the internal cause, reported as internal_message.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// ConfigErrorf is a failure the user fixes in their config, catalog or state.
func ConfigErrorf(format string, args ...any) *Error {
	return &Error{FailureType: FailureConfig, Message: fmt.Sprintf(format, args...)}
}

// AsError returns err as an *Error, treating anything unclassified as a
// system_error: a failure of the connector itself.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{FailureType: FailureSystem, Message: "the connector failed unexpectedly", Err: err}
}
