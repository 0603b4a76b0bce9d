package wire

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"strings"
)

// Page tokens are upstream's: base64 of the JSON {"offset": N} (spec
// tracking-api.md §6.4).

// PageToken is the token for the page starting at offset.
func PageToken(offset int64) string {
	return base64.StdEncoding.EncodeToString([]byte(`{"offset": ` + strconv.FormatInt(offset, 10) + `}`))
}

// ParsePageToken returns the offset in token ("" = 0).
func ParsePageToken(token string) (int64, *Error) {
	if token == "" {
		return 0, nil
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(token))
	if err != nil {
		return 0, Errorf(InvalidParameterValue, "Invalid page token, could not base64-decode")
	}
	var parsed map[string]any
	if json.Unmarshal(raw, &parsed) != nil {
		return 0, Errorf(InvalidParameterValue, "Invalid page token, decoded value=%s", truncateForMessage(string(raw)))
	}
	var offset int64
	switch v := parsed["offset"].(type) {
	case float64:
		if v != float64(int64(v)) || v < 0 || v > 1<<53 {
			return 0, Errorf(InvalidParameterValue, "Invalid page token, not stringable %v", v)
		}
		offset = int64(v)
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return 0, Errorf(InvalidParameterValue, "Invalid page token, not stringable %s", truncateForMessage(v))
		}
		offset = n
	default:
		return 0, Errorf(InvalidParameterValue, "Invalid page token, parsed value=%s", truncateForMessage(string(raw)))
	}
	if offset == 0 {
		return 0, Errorf(InvalidParameterValue, "Invalid page token, parsed value=%s", truncateForMessage(string(raw)))
	}
	return offset, nil
}

// truncateForMessage shortens a client value quoted in a message.
func truncateForMessage(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}
