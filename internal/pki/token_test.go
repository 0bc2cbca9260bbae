package pki

import (
	"bytes"
	"strings"
	"testing"
)

func TestTokenRoundTrip(t *testing.T) {
	ca := testCA(t, "x")
	tok, err := NewToken(ca)
	if err != nil {
		t.Fatal(err)
	}
	if tok.CASum != ca.Sum() {
		t.Error("token does not pin the CA")
	}
	if tok.Secret == [16]byte{} {
		t.Error("secret is all zero")
	}
	s := tok.String()
	if len(s) != tokenLen || !strings.HasPrefix(s, "ssi1.") {
		t.Errorf("String() = %q, not in the ssi1.SECRET.CAHASH form", s)
	}
	for _, in := range []string{s, "  " + s + "\n"} {
		got, err := ParseToken(in)
		if err != nil {
			t.Fatalf("ParseToken(%q): %v", in, err)
		}
		if got != tok {
			t.Errorf("ParseToken(%q) = %v, want %v", in, got, tok)
		}
	}
	if !tok.SecretMatches(tok.Secret) {
		t.Error("SecretMatches(own secret) = false")
	}
	other := tok.Secret
	other[15] ^= 1
	if tok.SecretMatches(other) {
		t.Error("SecretMatches(other secret) = true")
	}
}

func TestParseTokenErrors(t *testing.T) {
	secret := strings.Repeat("ab", 16)
	sum := strings.Repeat("0f", 32)
	tests := []struct {
		name, in, wantSubstring string
	}{
		{"empty", "", "join token: empty"},
		{"blank", " \t\n", "join token: empty"},
		{"one part", "ssi1", "want 3 dot-separated parts (ssi1.SECRET.CAHASH), got 1"},
		{"two parts", "ssi1." + secret, "join token: want 3 dot-separated parts (ssi1.SECRET.CAHASH), got 2"},
		{"four parts", "ssi1." + secret + "." + sum + ".x", "got 4"},
		{"version", "ssi2." + secret + "." + sum, `join token: unknown version "ssi2"`},
		{"version case", "SSI1." + secret + "." + sum, `unknown version "SSI1"`},
		{"long version", strings.Repeat("v", 40) + "." + secret + "." + sum, `unknown version "vvvvvvvvvvvvvvvv..."`},
		{"short secret", "ssi1." + secret[:30] + "." + sum, "join token: secret is not 32 hex characters: got 30 characters"},
		{"long secret", "ssi1." + secret + "00." + sum, "secret is not 32 hex characters: got 34"},
		{"empty secret", "ssi1.." + sum, "secret is not 32 hex characters"},
		{"non-hex secret", "ssi1.g" + secret[1:] + "." + sum, "secret is not 32 hex characters: character 1 is not one of 0-9a-f"},
		{"uppercase secret", "ssi1." + strings.ToUpper(secret) + "." + sum, "secret is not 32 hex characters"},
		{"short hash", "ssi1." + secret + "." + sum[:63], "join token: CA hash is not 64 hex characters: got 63 characters"},
		{"non-hex hash", "ssi1." + secret + "." + sum[:63] + "z", "CA hash is not 64 hex characters: character 64"},
		{"too long", "ssi1." + secret + "." + sum + strings.Repeat(" ", 200), "join token: too long (302 bytes; a token is 102 characters)"},
		{"inner space", "ssi1." + secret + ". " + sum, "CA hash is not 64 hex characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseToken(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.wantSubstring) {
				t.Errorf("ParseToken(%q) error = %v, want it to contain %q", tt.in, err, tt.wantSubstring)
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("error %q leaks the secret", err)
			}
		})
	}
}

func TestNewGossipKey(t *testing.T) {
	a, err := NewGossipKey()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewGossipKey()
	if len(a) != 32 || bytes.Equal(a, b) {
		t.Errorf("gossip keys %x and %x: want two different 32-byte keys", a, b)
	}
}
