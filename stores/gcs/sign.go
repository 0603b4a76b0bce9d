package gcs

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"cloud.google.com/go/auth"
	"cloud.google.com/go/compute/metadata"
	"cloud.google.com/go/storage"

	"github.com/ferryml/ferry/stores"
)

// signer signs V4 URLs for one service account: with its private key
// (GOOG4-RSA-SHA256, computed locally) or, when the credentials hold no
// key (metadata server, impersonation), through the IAM Credentials
// API's signBlob, as Google's libraries and upstream do.
type signer struct {
	email string
	// key is the PEM private key ("" = sign with signBlob).
	key []byte
	// hc and iam send signBlob requests (authorized client, endpoint).
	hc  *http.Client
	iam string
}

// credsFile is the part of a credentials JSON file the signer reads.
type credsFile struct {
	Type             string `json:"type"`
	ClientEmail      string `json:"client_email"`
	PrivateKey       string `json:"private_key"`
	ImpersonationURL string `json:"service_account_impersonation_url"`
}

// newSigner finds out how creds can sign: a service-account key file
// signs locally; impersonated and external accounts, and the metadata
// server's account, sign through signBlob. User credentials cannot sign.
func newSigner(ctx context.Context, creds *auth.Credentials, hc *http.Client, iam string) (*signer, error) {
	if j := creds.JSON(); len(j) > 0 {
		var f credsFile
		if err := json.Unmarshal(j, &f); err != nil {
			return nil, fmt.Errorf("credentials JSON: %v", err)
		}
		switch f.Type {
		case "service_account":
			if f.ClientEmail == "" || f.PrivateKey == "" {
				return nil, errors.New("the service-account file has no client_email or private_key")
			}
			return &signer{email: f.ClientEmail, key: []byte(f.PrivateKey)}, nil
		case "impersonated_service_account", "external_account":
			// .../serviceAccounts/EMAIL:generateAccessToken
			u := f.ImpersonationURL
			start, end := strings.LastIndex(u, "/"), strings.LastIndex(u, ":")
			if end <= start+1 {
				return nil, fmt.Errorf("%s credentials without a service_account_impersonation_url", f.Type)
			}
			return &signer{email: u[start+1 : end], hc: hc, iam: iam}, nil
		default:
			return nil, fmt.Errorf("%q credentials cannot sign URLs; use a service account", f.Type)
		}
	}
	if !metadata.OnGCE() {
		return nil, errors.New("no service-account key and no metadata server")
	}
	mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	email, err := metadata.EmailWithContext(mctx, "default")
	if err != nil || email == "" {
		return nil, fmt.Errorf("the metadata server names no service account: %v", err)
	}
	return &signer{email: email, hc: hc, iam: iam}, nil
}

// signBlob signs b with the service account's key held by Google.
func (sg *signer) signBlob(ctx context.Context, b []byte) ([]byte, error) {
	body, _ := json.Marshal(map[string]string{"payload": base64.StdEncoding.EncodeToString(b)})
	u := strings.TrimSuffix(sg.iam, "/") + "/v1/projects/-/serviceAccounts/" + url.PathEscape(sg.email) + ":signBlob"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := sg.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &xmlError{Op: "IAM signBlob", Status: resp.StatusCode, Message: strings.TrimSpace(string(rb))}
	}
	var out struct {
		SignedBlob string `json:"signedBlob"`
	}
	if err := json.Unmarshal(rb, &out); err != nil {
		return nil, fmt.Errorf("IAM signBlob: %v", err)
	}
	return base64.StdEncoding.DecodeString(out.SignedBlob)
}

// signedURL is a V4 signed URL for method on object, valid for ttl, with
// extra query parameters signed in, naming the XML API host.
func (s *Store) signedURL(ctx context.Context, method, object string, ttl time.Duration, query url.Values) (string, error) {
	sg := s.signer
	if sg == nil {
		return "", errNoSigner
	}
	if ttl <= 0 || ttl > MaxSignedURLTTL {
		ttl = min(max(ttl, time.Second), MaxSignedURLTTL)
	}
	opts := &storage.SignedURLOptions{
		GoogleAccessID:  sg.email,
		Scheme:          storage.SigningSchemeV4,
		Method:          method,
		Expires:         time.Now().Add(ttl),
		QueryParameters: query,
		Style:           storage.PathStyle(),
		Hostname:        s.xmlHost,
		Insecure:        s.xmlScheme == "http",
	}
	var signErr error
	if len(sg.key) > 0 {
		opts.PrivateKey = sg.key
	} else {
		opts.SignBytes = func(b []byte) ([]byte, error) {
			out, err := sg.signBlob(ctx, b)
			signErr = err
			return out, err
		}
	}
	u, err := storage.SignedURL(s.cfg.Bucket, object, opts)
	if signErr != nil {
		return "", signErr // keeps its type for classify
	}
	return u, err
}

// PresignGet implements stores.Presigner: a V4 signed GET URL for key,
// valid for ttl. (Upstream 3.11 presigns downloads on S3 only; Ferry
// offers them on GCS too.)
func (s *SigningStore) PresignGet(ctx context.Context, key string, ttl time.Duration) (stores.PresignedRequest, error) {
	u, err := s.signedURL(ctx, http.MethodGet, s.objectName(key), ttl, nil)
	if err != nil {
		return stores.PresignedRequest{}, s.fail("presign get", key, err)
	}
	return stores.PresignedRequest{URL: u}, nil
}
