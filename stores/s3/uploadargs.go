package s3

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"
)

// UploadArgs is MLFLOW_S3_UPLOAD_EXTRA_ARGS, parsed: boto3's upload
// ExtraArgs mapped onto minio-go's PutObjectOptions. They apply to every
// object Ferry writes itself (single PUTs and the multipart uploads of
// large proxied PUTs); as upstream, not to presigned multipart uploads.
type UploadArgs struct {
	// Opts holds every supported argument except the SSE-C key.
	Opts minio.PutObjectOptions
	// SSEC is the customer key (SSECustomerKey), which S3 also needs on
	// every UploadPart.
	SSEC encrypt.ServerSide
	// Keys are the argument names given, sorted (for logs and tests).
	Keys []string
}

// uploadArgHandlers maps each supported boto3 ExtraArgs key onto the
// options. Values are strings unless noted.
var uploadArgHandlers = map[string]func(a *UploadArgs, v any, all map[string]any) error{
	"ACL":                       amzHeader("x-amz-acl"),
	"GrantFullControl":          amzHeader("x-amz-grant-full-control"),
	"GrantRead":                 amzHeader("x-amz-grant-read"),
	"GrantReadACP":              amzHeader("x-amz-grant-read-acp"),
	"GrantWriteACP":             amzHeader("x-amz-grant-write-acp"),
	"CacheControl":              strField(func(o *minio.PutObjectOptions, s string) { o.CacheControl = s }),
	"ContentDisposition":        strField(func(o *minio.PutObjectOptions, s string) { o.ContentDisposition = s }),
	"ContentEncoding":           strField(func(o *minio.PutObjectOptions, s string) { o.ContentEncoding = s }),
	"ContentLanguage":           strField(func(o *minio.PutObjectOptions, s string) { o.ContentLanguage = s }),
	"ContentType":               strField(func(o *minio.PutObjectOptions, s string) { o.ContentType = s }),
	"StorageClass":              strField(func(o *minio.PutObjectOptions, s string) { o.StorageClass = s }),
	"WebsiteRedirectLocation":   strField(func(o *minio.PutObjectOptions, s string) { o.WebsiteRedirectLocation = s }),
	"ObjectLockMode":            strField(func(o *minio.PutObjectOptions, s string) { o.Mode = minio.RetentionMode(s) }),
	"ObjectLockLegalHoldStatus": strField(func(o *minio.PutObjectOptions, s string) { o.LegalHold = minio.LegalHoldStatus(s) }),
	"Expires": func(a *UploadArgs, v any, _ map[string]any) error {
		t, err := parseTime(v)
		a.Opts.Expires = t
		return err
	},
	"ObjectLockRetainUntilDate": func(a *UploadArgs, v any, _ map[string]any) error {
		t, err := parseTime(v)
		a.Opts.RetainUntilDate = t
		return err
	},
	// Metadata: a JSON object of user metadata (x-amz-meta-*).
	"Metadata": func(a *UploadArgs, v any, _ map[string]any) error {
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("want a JSON object")
		}
		for k, mv := range m {
			s, ok := mv.(string)
			if !ok {
				return fmt.Errorf("value of %q is not a string", k)
			}
			if a.Opts.UserMetadata == nil {
				a.Opts.UserMetadata = map[string]string{}
			}
			a.Opts.UserMetadata["x-amz-meta-"+k] = s
		}
		return nil
	},
	// Tagging: a URL query string, "k1=v1&k2=v2".
	"Tagging": func(a *UploadArgs, v any, _ map[string]any) error {
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("want a string")
		}
		q, err := url.ParseQuery(s)
		if err != nil {
			return err
		}
		a.Opts.UserTags = map[string]string{}
		for k := range q {
			a.Opts.UserTags[k] = q.Get(k)
		}
		return nil
	},
	// ServerSideEncryption: "AES256" or "aws:kms" (with SSEKMSKeyId and
	// SSEKMSEncryptionContext, base64 JSON as in boto3).
	"ServerSideEncryption": func(a *UploadArgs, v any, all map[string]any) error {
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("want a string")
		}
		switch s {
		case "AES256":
			a.Opts.ServerSideEncryption = encrypt.NewSSE()
			return nil
		case "aws:kms":
			keyID, _ := all["SSEKMSKeyId"].(string)
			var ctx any
			if raw, ok := all["SSEKMSEncryptionContext"].(string); ok && raw != "" {
				js, err := base64.StdEncoding.DecodeString(raw)
				if err != nil {
					return fmt.Errorf("SSEKMSEncryptionContext is not base64: %v", err)
				}
				var m map[string]any
				if err := json.Unmarshal(js, &m); err != nil {
					return fmt.Errorf("SSEKMSEncryptionContext is not base64 JSON: %v", err)
				}
				ctx = m
			}
			sse, err := encrypt.NewSSEKMS(keyID, ctx)
			a.Opts.ServerSideEncryption = sse
			return err
		}
		return fmt.Errorf("%q: want AES256 or aws:kms", s)
	},
	"SSEKMSKeyId":             needs("ServerSideEncryption", "aws:kms"),
	"SSEKMSEncryptionContext": needs("ServerSideEncryption", "aws:kms"),
	// SSECustomerKey: the raw key (boto3 base64-encodes it and adds the
	// MD5 itself, and so does minio-go).
	"SSECustomerKey": func(a *UploadArgs, v any, all map[string]any) error {
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("want a string")
		}
		if alg, _ := all["SSECustomerAlgorithm"].(string); alg != "AES256" {
			return fmt.Errorf("needs SSECustomerAlgorithm AES256")
		}
		sse, err := encrypt.NewSSEC([]byte(s))
		a.SSEC = sse
		return err
	},
	"SSECustomerAlgorithm": needs("SSECustomerKey", ""),
	"SSECustomerKeyMD5":    needs("SSECustomerKey", ""),
}

// ParseUploadArgs maps a decoded MLFLOW_S3_UPLOAD_EXTRA_ARGS object. Keys
// Ferry cannot honour are an error (silently dropping, say, an encryption
// setting would be worse).
func ParseUploadArgs(m map[string]any) (UploadArgs, error) {
	var a UploadArgs
	var problems []string
	for k, v := range m {
		a.Keys = append(a.Keys, k)
		h, ok := uploadArgHandlers[k]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s is not supported", k))
			continue
		}
		if err := h(&a, v, m); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", k, err))
		}
	}
	sort.Strings(a.Keys)
	if len(problems) > 0 {
		sort.Strings(problems)
		supported := make([]string, 0, len(uploadArgHandlers))
		for k := range uploadArgHandlers {
			supported = append(supported, k)
		}
		sort.Strings(supported)
		return UploadArgs{}, fmt.Errorf("%s (supported: %s)", strings.Join(problems, "; "), strings.Join(supported, ", "))
	}
	if a.SSEC != nil && a.Opts.ServerSideEncryption != nil {
		return UploadArgs{}, fmt.Errorf("ServerSideEncryption and SSECustomerKey exclude each other")
	}
	return a, nil
}

// putOptions returns the options for writing key: the content type guessed
// from the name as upstream does, then the extra args (applied last, so
// they can override it).
func (a UploadArgs) putOptions(key string) minio.PutObjectOptions {
	o := a.Opts
	if o.UserMetadata != nil {
		m := make(map[string]string, len(o.UserMetadata))
		for k, v := range o.UserMetadata {
			m[k] = v
		}
		o.UserMetadata = m
	}
	if o.ContentType == "" {
		ct, enc := guessType(key)
		o.ContentType = ct
		if o.ContentEncoding == "" {
			o.ContentEncoding = enc
		}
	}
	if a.SSEC != nil {
		o.ServerSideEncryption = a.SSEC
	}
	o.DisableMultipart = true
	return o
}

// encodings are the suffixes Python's mimetypes reports as an encoding.
var encodings = map[string]string{".gz": "gzip", ".bz2": "bzip2", ".xz": "xz", ".br": "br", ".Z": "compress"}

// guessType is a small version of Python's mimetypes.guess_type: a type
// from the extension ("" when unknown, S3 then stores its default) and an
// encoding for compressed names ("x.tar.gz" → application/x-tar, gzip).
func guessType(key string) (contentType, encoding string) {
	name := path.Base(key)
	if enc, ok := encodings[path.Ext(name)]; ok {
		encoding = enc
		name = strings.TrimSuffix(name, path.Ext(name))
	}
	if ext := path.Ext(name); ext != "" {
		contentType = mime.TypeByExtension(strings.ToLower(ext))
		if ext == ".tar" && contentType == "" {
			contentType = "application/x-tar"
		}
	}
	return contentType, encoding
}

func amzHeader(name string) func(a *UploadArgs, v any, _ map[string]any) error {
	return func(a *UploadArgs, v any, _ map[string]any) error {
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("want a string")
		}
		if a.Opts.UserMetadata == nil {
			a.Opts.UserMetadata = map[string]string{}
		}
		a.Opts.UserMetadata[name] = s
		return nil
	}
}

func strField(set func(o *minio.PutObjectOptions, s string)) func(a *UploadArgs, v any, _ map[string]any) error {
	return func(a *UploadArgs, v any, _ map[string]any) error {
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("want a string")
		}
		set(&a.Opts, s)
		return nil
	}
}

// needs accepts a key that only makes sense beside another one (whose
// handler reads it); want, when set, is the other key's required value.
func needs(other, want string) func(a *UploadArgs, v any, all map[string]any) error {
	return func(_ *UploadArgs, v any, all map[string]any) error {
		if _, ok := v.(string); !ok {
			return fmt.Errorf("want a string")
		}
		got, ok := all[other].(string)
		if !ok || (want != "" && got != want) {
			if want != "" {
				return fmt.Errorf("needs %s %s", other, want)
			}
			return fmt.Errorf("needs %s", other)
		}
		return nil
	}
}

func parseTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, fmt.Errorf("want a date string")
	}
	for _, layout := range []string{time.RFC3339, http.TimeFormat, "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an RFC 3339 or HTTP date", s)
}
