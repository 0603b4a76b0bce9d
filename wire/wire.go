// Package wire holds MLflow's HTTP conventions shared by every Ferry
// handler: error codes and their HTTP statuses (one table), the error JSON
// body, the mapping from store sentinels to MLflow errors, JSON request
// decoding with upstream's Content-Type rules and a size cap, and the
// bounds on reading request bodies (stall timeout, JSON memory budget).
package wire

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"strings"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/stores"
)

// ErrorCode is an MLflow databricks.ErrorCode name.
type ErrorCode string

// The error codes Ferry produces (spec tracking-api.md §1.4).
const (
	BadRequest             ErrorCode = "BAD_REQUEST"
	InvalidParameterValue  ErrorCode = "INVALID_PARAMETER_VALUE"
	ResourceAlreadyExists  ErrorCode = "RESOURCE_ALREADY_EXISTS"
	ResourceDoesNotExist   ErrorCode = "RESOURCE_DOES_NOT_EXIST"
	EndpointNotFound       ErrorCode = "ENDPOINT_NOT_FOUND"
	PermissionDenied       ErrorCode = "PERMISSION_DENIED"
	Unauthenticated        ErrorCode = "UNAUTHENTICATED"
	InvalidState           ErrorCode = "INVALID_STATE"
	InternalError          ErrorCode = "INTERNAL_ERROR"
	NotImplemented         ErrorCode = "NOT_IMPLEMENTED"
	TemporarilyUnavailable ErrorCode = "TEMPORARILY_UNAVAILABLE"
	FeatureDisabled        ErrorCode = "FEATURE_DISABLED"
	RequestLimitExceeded   ErrorCode = "REQUEST_LIMIT_EXCEEDED"
	DeadlineExceeded       ErrorCode = "DEADLINE_EXCEEDED"
)

// httpStatus is upstream's ERROR_CODE_TO_HTTP_STATUS; codes not listed
// answer 500 (FEATURE_DISABLED among them, as upstream).
var httpStatus = map[ErrorCode]int{
	BadRequest:              400,
	InvalidParameterValue:   400,
	ResourceAlreadyExists:   400,
	"CUSTOMER_UNAUTHORIZED": 401,
	Unauthenticated:         401,
	PermissionDenied:        403,
	EndpointNotFound:        404,
	"NOT_FOUND":             404,
	ResourceDoesNotExist:    404,
	"ABORTED":               409,
	"ALREADY_EXISTS":        409,
	"RESOURCE_CONFLICT":     409,
	RequestLimitExceeded:    429,
	"RESOURCE_EXHAUSTED":    429,
	"CANCELLED":             499,
	InternalError:           500,
	InvalidState:            500,
	"DATA_LOSS":             500,
	NotImplemented:          501,
	TemporarilyUnavailable:  503,
	DeadlineExceeded:        504,
}

// Status returns the HTTP status upstream sends for code.
func (code ErrorCode) Status() int {
	if s, ok := httpStatus[code]; ok {
		return s
	}
	return 500
}

// classification is upstream 3.11's (sqlstate, error_class) pair per code;
// codes without one (NOT_IMPLEMENTED, ...) carry neither field.
var classification = map[ErrorCode][2]string{
	InvalidParameterValue:   {"KAM00", "INVALID_PARAMETER_VALUE"},
	BadRequest:              {"KAM00", "INVALID_PARAMETER_VALUE"},
	ResourceDoesNotExist:    {"KAM00", "RESOURCE_NOT_FOUND"},
	"NOT_FOUND":             {"KAM00", "RESOURCE_NOT_FOUND"},
	EndpointNotFound:        {"KAM00", "RESOURCE_NOT_FOUND"},
	ResourceAlreadyExists:   {"KAM00", "RESOURCE_ALREADY_EXISTS"},
	PermissionDenied:        {"KAM00", "PERMISSION_DENIED"},
	"CUSTOMER_UNAUTHORIZED": {"KAM00", "PERMISSION_DENIED"},
	FeatureDisabled:         {"KAM00", "FEATURE_DISABLED"},
	InternalError:           {"XXM00", "CLIENT_INTERNAL_ERROR"},
	InvalidState:            {"XXM00", "CLIENT_INTERNAL_ERROR"},
	TemporarilyUnavailable:  {"XXM00", "CLIENT_INTERNAL_ERROR"},
}

// Error is an MLflow API error: it knows its code, message and status.
type Error struct {
	Code    ErrorCode
	Message string
	// Cause is the underlying error, logged but never sent to the client.
	Cause error
}

// Errorf builds an *Error with a formatted message.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Cause)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Cause }

// Body is the JSON shape of an MLflow error response.
type Body struct {
	ErrorCode  ErrorCode `json:"error_code"`
	Message    string    `json:"message"`
	SQLState   string    `json:"sqlstate,omitempty"`
	ErrorClass string    `json:"error_class,omitempty"`
}

// BodyOf renders e as upstream 3.11 does.
func BodyOf(e *Error) Body {
	b := Body{ErrorCode: e.Code, Message: e.Message}
	if c, ok := classification[e.Code]; ok {
		b.SQLState, b.ErrorClass = c[0], c[1]
	}
	return b
}

// Send writes e as an MLflow error response.
func Send(c *fiber.Ctx, e *Error) error {
	// A download that fails after its headers were prepared must not
	// present the error body as the file.
	c.Response().Header.Del(fiber.HeaderContentDisposition)
	c.Response().Header.Del(fiber.HeaderContentRange)
	return c.Status(e.Code.Status()).JSON(BodyOf(e))
}

// InvalidPath is upstream's 400 for an artifact path it refuses (what
// stores.SafePath and the drivers report as stores.ErrInvalidKey):
// INVALID_PARAMETER_VALUE "Invalid path", with err kept as the cause.
func InvalidPath(err error) *Error {
	return &Error{Code: InvalidParameterValue, Message: "Invalid path", Cause: err}
}

// FromStore maps an error from the stores package onto an MLflow error.
// This is the one table from store sentinels to MLflow codes.
func FromStore(err error) *Error {
	var we *Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &we):
		return we
	case errors.As(err, new(*BodyError)):
		return bodyError(err)
	case errors.Is(err, stores.ErrOutsideRoot):
		return &Error{Code: InvalidParameterValue, Message: "Invalid path: resolved path is outside the artifact directory", Cause: err}
	case errors.Is(err, stores.ErrInvalidKey):
		return InvalidPath(err)
	case errors.Is(err, stores.ErrNotFound):
		return &Error{Code: ResourceDoesNotExist, Message: "No such artifact", Cause: err}
	case errors.Is(err, stores.ErrIsDir):
		return &Error{Code: InvalidParameterValue, Message: "The artifact path names a directory, not a file", Cause: err}
	case errors.Is(err, stores.ErrExists):
		return &Error{Code: ResourceAlreadyExists, Message: "Artifact already exists", Cause: err}
	case errors.Is(err, stores.ErrPermission):
		return &Error{Code: PermissionDenied, Message: "The artifact store denied access", Cause: err}
	case errors.Is(err, stores.ErrUnsupported):
		return &Error{Code: NotImplemented, Message: "Not supported by the current artifact repository", Cause: err}
	case errors.Is(err, stores.ErrTooLarge):
		return &Error{Code: InvalidParameterValue, Message: "Artifact too large for the artifact store", Cause: err}
	case errors.Is(err, stores.ErrIncomplete), errors.Is(err, io.ErrUnexpectedEOF):
		return &Error{Code: BadRequest, Message: "Upload ended before the announced Content-Length", Cause: err}
	case errors.Is(err, stores.ErrInvalidRange):
		return &Error{Code: InvalidParameterValue, Message: "Requested range not satisfiable", Cause: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: DeadlineExceeded, Message: "The artifact store timed out", Cause: err}
	case errors.Is(err, stores.ErrUnavailable):
		return &Error{Code: TemporarilyUnavailable, Message: "The artifact store is unavailable", Cause: err}
	default:
		return &Error{Code: InternalError, Message: "Artifact store operation failed", Cause: err}
	}
}

// FromStoreKey is FromStore with upstream's not-found text naming the key.
func FromStoreKey(err error, key string) *Error {
	e := FromStore(err)
	if e != nil && e.Code == ResourceDoesNotExist && errors.Is(err, stores.ErrNotFound) {
		e.Message = fmt.Sprintf("No such artifact: '%s'", key)
	}
	return e
}

// MaxJSONBody caps JSON request bodies. Artifact bytes never go through
// JSON; the largest legitimate JSON body is an mpu/complete with 10,000
// parts, a few MiB.
const MaxJSONBody = 32 << 20

// RequireJSON enforces upstream's Content-Type rule for POST and PUT.
func RequireJSON(c *fiber.Ctx) *Error {
	ct := c.Get(fiber.HeaderContentType)
	if ct == "" {
		return Errorf(InvalidParameterValue, "Bad Request. Content-Type header is missing.")
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || !strings.EqualFold(mt, "application/json") {
		return Errorf(InvalidParameterValue, "Bad Request. Content-Type must be one of ['application/json'].")
	}
	return nil
}

// DecodeJSON reads the body and unmarshals it into v. Per upstream, an
// absent or unparsable body decodes as {} (required-field checks then
// report what is missing), and a JSON string holding JSON is decoded again.
func DecodeJSON(c *fiber.Ctx, v any) *Error {
	data, werr := jsonBody(c)
	if werr != nil || data == nil {
		return werr
	}
	return unmarshalBody(data, v)
}

// jsonBody reads the body as the JSON text to decode: nil when it is
// empty, the inner text when it is a JSON string (old clients encode
// twice).
func jsonBody(c *fiber.Ctx) ([]byte, *Error) {
	data, werr := ReadBody(c, MaxJSONBody)
	if werr != nil {
		return nil, werr
	}
	// encoding/json would silently replace invalid bytes with U+FFFD and
	// let altered names into the store.
	if !utf8.Valid(data) {
		return nil, Errorf(InvalidParameterValue, "Invalid request body: not valid UTF-8.")
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	var inner string
	if json.Unmarshal(data, &inner) == nil {
		data = []byte(inner)
	}
	return data, nil
}

// unmarshalBody decodes jsonBody's text into v: a value of the wrong type
// for v is upstream's type error, unparsable text leaves v as it was.
func unmarshalBody(data []byte, v any) *Error {
	if err := json.Unmarshal(data, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			// Show the value as upstream does when it is a top-level
			// field; inside a nested one only its type is known here.
			var fields map[string]json.RawMessage
			if json.Unmarshal(data, &fields) == nil && fields[te.Field] != nil {
				return TypeError(te.Field, fields[te.Field])
			}
			kind, _, _ := strings.Cut(te.Value, " ")
			py := map[string]string{"string": "str", "number": "float", "bool": "bool", "array": "list", "object": "dict"}[kind]
			return Errorf(InvalidParameterValue, "Invalid value for parameter '%s' supplied: Hint: Value was of type '%s'. See the API docs for more information about request parameters.", te.Field, py)
		}
		return nil
	}
	return nil
}

// DecodeRequest is upstream's _get_request_message for a body: POST and
// PUT must carry Content-Type application/json (RequireJSON), every method
// then decodes its JSON body with DecodeJSON.
func DecodeRequest(c *fiber.Ctx, v any) *Error {
	data, werr := requestBody(c)
	if werr != nil || data == nil {
		return werr
	}
	return unmarshalBody(data, v)
}

// requestBody is jsonBody after DecodeRequest's Content-Type rule.
func requestBody(c *fiber.Ctx) ([]byte, *Error) {
	if m := c.Method(); m == fiber.MethodPost || m == fiber.MethodPut {
		if werr := RequireJSON(c); werr != nil {
			return nil, werr
		}
	}
	return jsonBody(c)
}

// MissingParam is upstream's message for an absent required field.
func MissingParam(field string) *Error {
	return Errorf(InvalidParameterValue, "Missing value for required parameter '%s'. See the API docs for more information about request parameters.", field)
}
