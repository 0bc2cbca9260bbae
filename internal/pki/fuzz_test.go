package pki

import (
	"strings"
	"testing"
)

// FuzzParseToken checks that ParseToken never panics and that a token it
// accepts has exactly one text form: String gives back the (trimmed) input.
func FuzzParseToken(f *testing.F) {
	f.Add("ssi1." + strings.Repeat("0", 32) + "." + strings.Repeat("f", 64))
	f.Add("")
	f.Add("ssi1..")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken(s)
		if err != nil {
			return
		}
		if got, want := tok.String(), strings.TrimSpace(s); got != want {
			t.Fatalf("ParseToken(%q).String() = %q, want %q", s, got, want)
		}
		again, err := ParseToken(tok.String())
		if err != nil || again != tok {
			t.Fatalf("ParseToken(String()) = %v, %v; want %v", again, err, tok)
		}
	})
}

// FuzzParseCA checks that ParseCA never panics and that a CA it accepts is
// consistent: its key matches its certificate and it survives a round trip.
func FuzzParseCA(f *testing.F) {
	ca, err := NewCA("fuzz")
	if err != nil {
		f.Fatal(err)
	}
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ca.CertPEM, keyPEM)
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		ca, err := ParseCA(certPEM, keyPEM)
		if err != nil {
			return
		}
		if !keyMatches(ca.Key, ca.Cert) || !ca.Cert.IsCA {
			t.Fatal("ParseCA accepted an inconsistent CA")
		}
		k, err := ca.KeyPEM()
		if err != nil {
			t.Fatalf("KeyPEM: %v", err)
		}
		again, err := ParseCA(ca.CertPEM, k)
		if err != nil || again.Sum() != ca.Sum() || !again.Key.Equal(ca.Key) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzCheckCSR feeds arbitrary bytes as a joiner's certificate request (the
// master reads them from a node that holds only a token): nothing panics,
// and a request CheckCSR accepts is one SignCSR signs, for the node ID the
// master chooses whatever the request names.
func FuzzCheckCSR(f *testing.F) {
	key, err := NewNodeKey()
	if err != nil {
		f.Fatal(err)
	}
	good, err := CreateCSR(key, "0123456789abcdef")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{})
	f.Add(good[:len(good)/2])
	ca, err := NewCA("fuzz")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		if CheckCSR(der) != nil {
			return
		}
		certPEM, err := ca.SignCSR(der, "chosen-id", nil, 0)
		if err != nil {
			t.Fatalf("CheckCSR accepted a request SignCSR refuses: %v", err)
		}
		cert, err := parseCertPEM(certPEM)
		if err != nil || cert.Subject.CommonName != "chosen-id" {
			t.Fatalf("signed certificate names %q (%v), want the master's choice", cert.Subject.CommonName, err)
		}
	})
}
