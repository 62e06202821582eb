package api

import (
	"fmt"
	"strings"
)

// Error codes in error bodies.
const (
	CodeBadRequest       = "bad_request"
	CodeInvalidSpec      = "invalid_spec"
	CodeNotFound         = "not_found"
	CodeUnauthorized     = "unauthorized"
	CodeForbidden        = "forbidden"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeConflict         = "conflict"
	CodeTooLarge         = "too_large"
	CodeUnsupportedMedia = "unsupported_media_type"
	CodeUnavailable      = "unavailable"
	CodeInternal         = "internal"
)

// ErrorDetail is one problem with the input, e.g. one spec field.
type ErrorDetail struct {
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// Error is an API error: the HTTP status and the body's error object.
type Error struct {
	Status  int           `json:"-"`
	Code    string        `json:"code"`
	Message string        `json:"message"`
	Details []ErrorDetail `json:"details,omitempty"`
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error *Error `json:"error"`
}

// Error renders the error with every detail, one per line.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", e.Message)
	if e.Message == "" {
		fmt.Fprintf(&b, "HTTP %d %s", e.Status, e.Code)
	}
	for _, d := range e.Details {
		if d.Path != "" {
			fmt.Fprintf(&b, "\n  %s: %s", d.Path, d.Message)
		} else {
			fmt.Fprintf(&b, "\n  %s", d.Message)
		}
	}
	return b.String()
}
