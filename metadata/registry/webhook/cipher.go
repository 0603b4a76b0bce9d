package webhook

import (
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/fernet/fernet-go"
)

// Cipher encrypts webhook secrets at rest as upstream does: a Fernet token
// (url-safe base64 text) under MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY, so a
// database written by upstream MLflow decrypts in Ferry and back.
type Cipher struct {
	key *fernet.Key
	// Ephemeral is true when no key was configured and a random one is
	// used: secrets saved now cannot be read after a restart (upstream's
	// behaviour without the variable).
	Ephemeral bool
}

// NewCipher parses a Fernet key: 32 bytes in url-safe base64 (what
// cryptography's Fernet.generate_key() prints). An empty key gives an
// ephemeral random key, as upstream (Fernet.generate_key() when unset).
func NewCipher(key string) (*Cipher, error) {
	if key == "" {
		var k fernet.Key
		if err := k.Generate(); err != nil {
			return nil, err
		}
		return &Cipher{key: &k, Ephemeral: true}, nil
	}
	raw, err := base64.URLEncoding.DecodeString(key)
	if err != nil || len(raw) != 32 {
		return nil, errors.New("Fernet key must be 32 url-safe base64-encoded bytes")
	}
	var k fernet.Key
	copy(k[:], raw)
	return &Cipher{key: &k}, nil
}

// Encrypt returns the token stored in webhooks.secret.
func (c *Cipher) Encrypt(secret string) (string, error) {
	tok, err := fernet.EncryptAndSign([]byte(secret), c.key)
	return string(tok), err
}

// Decrypt reads a stored token (no age limit, as upstream).
func (c *Cipher) Decrypt(token string) (string, error) {
	msg := fernet.VerifyAndDecrypt([]byte(token), 0, []*fernet.Key{c.key})
	if msg == nil {
		return "", fmt.Errorf("webhook secret cannot be decrypted with MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY")
	}
	return string(msg), nil
}
