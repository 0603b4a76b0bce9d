package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
)

// Delivery headers (mlflow/webhooks/constants.py).
const (
	HeaderSignature  = "X-MLflow-Signature"
	HeaderDeliveryID = "X-MLflow-Delivery-Id"
	HeaderTimestamp  = "X-MLflow-Timestamp"
)

// Sign is the X-MLflow-Signature value: "v1," and the base64 of
// HMAC-SHA256(secret, "<deliveryID>.<timestamp>.<body>") (Standard
// Webhooks' scheme, as upstream).
func Sign(secret, deliveryID, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(deliveryID))
	m.Write([]byte("."))
	m.Write([]byte(timestamp))
	m.Write([]byte("."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}
