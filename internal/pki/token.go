package pki

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// tokenVersion is the first part of every join token.
const tokenVersion = "ssi1"

// tokenLen is the length of a token's text form, and maxTokenInput the
// longest input ParseToken looks at, white space included; anything longer
// cannot be a token and is rejected before it is split or scanned.
const (
	tokenLen      = len(tokenVersion) + 1 + 32 + 1 + 64
	maxTokenInput = 256
)

// Token is a join token:
//
//	ssi1.<secret: 32 lowercase hex chars>.<ca sha256: 64 lowercase hex chars>
//
// The secret admits the holder to the cluster; CASum pins the CA, so the
// joiner can tell the real cluster from an impostor. String returns the
// secret in clear, so do not log a Token.
type Token struct {
	Secret [16]byte
	CASum  [32]byte
}

// NewToken returns a token with a fresh random secret that pins ca.
func NewToken(ca *CA) (Token, error) {
	if ca == nil || ca.Cert == nil {
		return Token{}, errors.New("join token: no CA")
	}
	t := Token{CASum: ca.Sum()}
	if _, err := rand.Read(t.Secret[:]); err != nil {
		return Token{}, fmt.Errorf("join token: %w", err)
	}
	return t, nil
}

// String returns the token in its text form, "ssi1.SECRET.CAHASH".
func (t Token) String() string {
	return tokenVersion + "." + hex.EncodeToString(t.Secret[:]) + "." + hex.EncodeToString(t.CASum[:])
}

// ParseToken parses a token in the form String returns. Surrounding white
// space is ignored; hex digits must be lowercase, so every token has exactly
// one text form. Errors say what is wrong but never echo the secret.
func ParseToken(s string) (Token, error) {
	if len(s) > maxTokenInput {
		return Token{}, fmt.Errorf("join token: too long (%d bytes; a token is %d characters)", len(s), tokenLen)
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return Token{}, errors.New("join token: empty")
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return Token{}, fmt.Errorf("join token: want 3 dot-separated parts (ssi1.SECRET.CAHASH), got %d", len(parts))
	}
	if parts[0] != tokenVersion {
		v := parts[0]
		if len(v) > 16 {
			v = v[:16] + "..."
		}
		return Token{}, fmt.Errorf("join token: unknown version %q (want %q)", v, tokenVersion)
	}
	var t Token
	if err := decodeLowerHex(t.Secret[:], parts[1]); err != nil {
		return Token{}, fmt.Errorf("join token: secret is not %d hex characters: %w", 2*len(t.Secret), err)
	}
	if err := decodeLowerHex(t.CASum[:], parts[2]); err != nil {
		return Token{}, fmt.Errorf("join token: CA hash is not %d hex characters: %w", 2*len(t.CASum), err)
	}
	return t, nil
}

// SecretMatches reports, in constant time, whether secret is t's secret.
func (t Token) SecretMatches(secret [16]byte) bool {
	return subtle.ConstantTimeCompare(t.Secret[:], secret[:]) == 1
}

// decodeLowerHex decodes s, which must be exactly 2*len(dst) lowercase hex
// digits, into dst. Its errors give positions, not the offending text.
func decodeLowerHex(dst []byte, s string) error {
	if len(s) != 2*len(dst) {
		return fmt.Errorf("got %d characters", len(s))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("character %d is not one of 0-9a-f", i+1)
		}
	}
	_, err := hex.Decode(dst, []byte(s))
	return err
}

// NewGossipKey returns 32 random bytes, an AES-256 key for memberlist's
// gossip encryption.
func NewGossipKey() ([]byte, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("gossip key: %w", err)
	}
	return key, nil
}

// Hash returns the SHA-256 of the token's secret: what the cluster stores
// (never the secret itself), as kubeadm and Nomad keep tokens. The secret
// is 128 random bits, so a fast hash is enough: there is nothing to guess.
func (t Token) Hash() [32]byte { return sha256.Sum256(t.Secret[:]) }

// ID returns the token's public name: the first 12 hex digits of its hash.
// `ssi token list` shows it and `ssi token revoke` takes it; it reveals
// nothing of the secret.
func (t Token) ID() string { return TokenID(t.Hash()) }

// TokenID returns the public name of the token whose secret hashes to h.
func TokenID(h [32]byte) string { return hex.EncodeToString(h[:6]) }

// HashSecret returns the hash of a token secret as sent in a join request.
func HashSecret(secret []byte) [32]byte { return sha256.Sum256(secret) }
