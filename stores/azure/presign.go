package azure

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"

	"github.com/ferryml/ferry/stores"
)

// Presigned transfers
//
// Downloads are read-only service SAS URLs for one blob. Multipart uploads
// are block blobs, as upstream's: mpu/create makes no request; it hands
// out one write-only SAS URL per part with comp=block and a block id, so
// the client's PUT stages block i (Put Block); mpu/complete commits the
// block list in part order; abort has nothing to do, since staged blocks
// that are never committed are dropped by Azure (after a week) and never
// show in the blob.
//
// Block ids name the upload: base64("ferry-<32 hex nonce>-<5-digit part
// number>"), the nonce being the upload id Ferry returns. Upstream uses
// base64("mlflow_block_<i>") for every upload, so two concurrent uploads
// of one key stage into each other's blocks; with a nonce they cannot,
// and complete checks that every part's block id (from its URL, as
// upstream reads it) belongs to this upload and this part number.
//
// An account key signs with the key (service SAS). A token credential
// (DefaultAzureCredential) signs with a user-delegation key fetched from
// the service and cached (delegationSigner); upstream cannot presign there
// at all (its issue #25974). A SAS token cannot sign anything: such a
// store has no presign capability (New returns a plain *Store).

// sasClockSkew backdates a SAS's start, as Azure's own tools do, so a
// server whose clock runs a little behind still accepts it.
const sasClockSkew = 5 * time.Minute

// signer turns blob SAS values into a query string.
type signer interface {
	sign(ctx context.Context, bc *blob.Client, perms sas.BlobPermissions, start, expiry time.Time) (string, error)
}

// keySigner signs with the client's account key.
type keySigner struct{}

func (keySigner) sign(_ context.Context, bc *blob.Client, perms sas.BlobPermissions, start, expiry time.Time) (string, error) {
	return bc.GetSASURL(perms, expiry, &blob.GetSASURLOptions{StartTime: &start})
}

// delegationSigner signs with a user-delegation key, fetched with the
// token credential and reused while it covers the URL's lifetime.
type delegationSigner struct {
	svc *service.Client
	mu  sync.Mutex
	udc *service.UserDelegationCredential
	end time.Time // the cached key's expiry
}

// delegationKeyLife is how long a fetched user-delegation key is valid
// (Azure allows up to 7 days); URLs living longer get a key of their own.
const delegationKeyLife = 6 * time.Hour

func (d *delegationSigner) key(ctx context.Context, start, expiry time.Time) (*service.UserDelegationCredential, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.udc != nil && !d.end.Before(expiry) {
		return d.udc, nil
	}
	end := start.Add(delegationKeyLife)
	if expiry.After(end) {
		end = expiry
	}
	const layout = "2006-01-02T15:04:05Z"
	info := service.KeyInfo{Start: ptr(start.UTC().Format(layout)), Expiry: ptr(end.UTC().Format(layout))}
	udc, err := d.svc.GetUserDelegationCredential(ctx, info, nil)
	if err != nil {
		return nil, err
	}
	d.udc, d.end = udc, end
	return udc, nil
}

func (d *delegationSigner) sign(ctx context.Context, bc *blob.Client, perms sas.BlobPermissions, start, expiry time.Time) (string, error) {
	udc, err := d.key(ctx, start, expiry)
	if err != nil {
		return "", err
	}
	parts, err := blob.ParseURL(bc.URL())
	if err != nil {
		return "", err
	}
	qp, err := sas.BlobSignatureValues{
		Protocol:      sas.ProtocolHTTPSandHTTP,
		StartTime:     start.UTC(),
		ExpiryTime:    expiry.UTC(),
		Permissions:   perms.String(),
		ContainerName: parts.ContainerName,
		BlobName:      parts.BlobName,
	}.SignWithUserDelegation(udc)
	if err != nil {
		return "", err
	}
	return bc.URL() + "?" + qp.Encode(), nil
}

// presign returns a SAS URL for the blob of key.
func (s *SigningStore) presign(ctx context.Context, key string, perms sas.BlobPermissions, ttl time.Duration) (string, error) {
	now := time.Now()
	return s.sign.sign(ctx, s.cont.NewBlobClient(s.blobName(key)), perms, now.Add(-sasClockSkew), now.Add(ttl))
}

// PresignGet implements stores.Presigner: a read-only SAS URL for key,
// valid for ttl.
func (s *SigningStore) PresignGet(ctx context.Context, key string, ttl time.Duration) (stores.PresignedRequest, error) {
	u, err := s.presign(ctx, key, sas.BlobPermissions{Read: true}, ttl)
	if err != nil {
		return stores.PresignedRequest{}, s.fail("presign get", key, err)
	}
	return stores.PresignedRequest{URL: u}, nil
}

// blockIDFor is the block id of part n of the upload nonce.
func blockIDFor(nonce string, n int) string {
	return base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "ferry-%s-%05d", nonce, n))
}

// parseBlockID is blockIDFor backwards.
func parseBlockID(id string) (nonce string, n int, ok bool) {
	raw, err := base64.StdEncoding.DecodeString(id)
	if err != nil {
		return "", 0, false
	}
	rest, ok := strings.CutPrefix(string(raw), "ferry-")
	if !ok {
		return "", 0, false
	}
	nonce, num, ok := strings.Cut(rest, "-")
	if !ok || !validNonce(nonce) || len(num) != 5 {
		return "", 0, false
	}
	n, err = strconv.Atoi(num)
	return nonce, n, err == nil
}

func validNonce(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// CreateMultipart implements stores.Multiparter: no request, one
// write-only block-SAS URL per part, numbered from 1, valid for
// Config.PartURLTTL. The upload id is the nonce in the block ids.
func (s *SigningStore) CreateMultipart(ctx context.Context, key string, numParts int) (stores.MultipartUpload, error) {
	if numParts > MaxBlocks {
		return stores.MultipartUpload{}, fmt.Errorf("create multipart upload %s: %d parts, Azure allows %d blocks: %w", key, numParts, MaxBlocks, stores.ErrTooLarge)
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	nonce := hex.EncodeToString(b[:])
	base, err := s.presign(ctx, key, sas.BlobPermissions{Write: true}, s.cfg.PartURLTTL)
	if err != nil {
		return stores.MultipartUpload{}, s.fail("presign block upload", key, err)
	}
	up := stores.MultipartUpload{UploadID: nonce, Parts: make([]stores.PresignedPart, 0, numParts)}
	for i := 1; i <= numParts; i++ {
		u := base + "&comp=block&blockid=" + url.QueryEscape(blockIDFor(nonce, i))
		up.Parts = append(up.Parts, stores.PresignedPart{PartNumber: i, Request: stores.PresignedRequest{URL: u}})
	}
	return up, nil
}

// CompleteMultipart implements stores.Multiparter: it commits the parts'
// blocks in part-number order. Each part's block id comes from its URL
// (as upstream reads it) or, without one, from the upload id; a block id
// that is not this upload's block for that part number is refused
// (ErrInvalidKey, a 400) before anything is committed.
func (s *SigningStore) CompleteMultipart(ctx context.Context, key, uploadID string, parts []stores.CompletedPart) error {
	if uploadID != "" && !validNonce(uploadID) {
		return fmt.Errorf("complete multipart upload %s: upload id %q is not one of this store's: %w", key, uploadID, stores.ErrInvalidKey)
	}
	sorted := append([]stores.CompletedPart(nil), parts...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].PartNumber < sorted[j].PartNumber })
	ids := make([]string, 0, len(sorted))
	nonce := uploadID
	for i, p := range sorted {
		if i > 0 && sorted[i-1].PartNumber == p.PartNumber {
			return fmt.Errorf("complete multipart upload %s: part %d listed twice: %w", key, p.PartNumber, stores.ErrInvalidKey)
		}
		id := ""
		if p.URL != "" {
			u, err := url.Parse(p.URL)
			if err != nil {
				return fmt.Errorf("complete multipart upload %s: part %d: unparsable url: %w", key, p.PartNumber, stores.ErrInvalidKey)
			}
			id = u.Query().Get("blockid")
		} else if nonce != "" {
			id = blockIDFor(nonce, p.PartNumber)
		}
		n, num, ok := parseBlockID(id)
		switch {
		case !ok:
			return fmt.Errorf("complete multipart upload %s: part %d: no block id of this store in its url: %w", key, p.PartNumber, stores.ErrInvalidKey)
		case num != p.PartNumber:
			return fmt.Errorf("complete multipart upload %s: part %d: its url is part %d's: %w", key, p.PartNumber, num, stores.ErrInvalidKey)
		case nonce != "" && n != nonce:
			return fmt.Errorf("complete multipart upload %s: part %d belongs to another upload: %w", key, p.PartNumber, stores.ErrInvalidKey)
		}
		nonce = n
		ids = append(ids, id)
	}
	if _, err := s.cont.NewBlockBlobClient(s.blobName(key)).CommitBlockList(ctx, ids, nil); err != nil {
		return s.fail("commit block list", key, err)
	}
	return nil
}

// AbortMultipart implements stores.Multiparter. There is nothing to
// undo: the staged blocks were never committed, so the blob (or its
// absence) is as it was, and Azure discards uncommitted blocks itself.
// Deleting the blob to drop them sooner would also delete a blob
// committed earlier, which an abort must not.
func (s *SigningStore) AbortMultipart(_ context.Context, key, uploadID string) error {
	if uploadID != "" && !validNonce(uploadID) {
		return fmt.Errorf("abort multipart upload %s: upload id %q is not one of this store's: %w", key, uploadID, stores.ErrInvalidKey)
	}
	return nil
}
