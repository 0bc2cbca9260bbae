package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNewCA(t *testing.T) {
	ca := testCA(t, "prod")
	c := ca.Cert
	if got, want := c.Subject.CommonName, "ssi cluster CA prod"; got != want {
		t.Errorf("CN = %q, want %q", got, want)
	}
	if !c.IsCA || !c.BasicConstraintsValid || c.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("not a CA: IsCA=%v basic=%v usage=%v", c.IsCA, c.BasicConstraintsValid, c.KeyUsage)
	}
	if pub, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve.Params().Name != "P-256" {
		t.Errorf("public key %T, want ECDSA P-256", c.PublicKey)
	}
	if d := c.NotAfter.Sub(time.Now()); d < 10*364*24*time.Hour || d > 10*366*24*time.Hour {
		t.Errorf("valid for %v more, want about 10 years", d)
	}
	if err := c.CheckSignatureFrom(c); err != nil {
		t.Errorf("not self-signed: %v", err)
	}
	if ca.Sum() != sha256.Sum256(c.Raw) {
		t.Error("Sum is not the SHA-256 of the DER certificate")
	}
}

func TestParseCARoundTrip(t *testing.T) {
	ca := testCA(t, "x")
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseCA(ca.CertPEM, keyPEM)
	if err != nil {
		t.Fatalf("ParseCA: %v", err)
	}
	if got.Sum() != ca.Sum() || !got.Key.Equal(ca.Key) || !bytes.Equal(got.CertPEM, ca.CertPEM) {
		t.Error("ParseCA did not return the same CA")
	}

	// PKCS #8 keys are accepted too.
	der, err := x509.MarshalPKCS8PrivateKey(ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseCA(ca.CertPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err != nil {
		t.Errorf("ParseCA with PKCS #8 key: %v", err)
	}
}

func TestParseCAErrors(t *testing.T) {
	ca := testCA(t, "x")
	keyPEM, _ := ca.KeyPEM()
	otherKey, _ := testCA(t, "other").KeyPEM()
	nodeCert, nodeKey := testNode(t, ca, "n1")
	tests := []struct {
		name          string
		cert, key     []byte
		wantSubstring string
	}{
		{"empty cert", nil, keyPEM, "ca certificate: not a PEM certificate"},
		{"garbage cert", []byte("hello"), keyPEM, "ca certificate: not a PEM certificate"},
		{"key as cert", keyPEM, keyPEM, "ca certificate: not a PEM certificate"},
		{"bad DER", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}), keyPEM, "ca certificate: invalid certificate"},
		{"node cert", nodeCert, nodeKey, "ca certificate: \"n1\" is not a CA certificate"},
		{"empty key", ca.CertPEM, nil, "ca key: not a PEM private key"},
		{"cert as key", ca.CertPEM, ca.CertPEM, "ca key: not a PEM private key"},
		{"bad key DER", ca.CertPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1}}), "ca key: invalid EC private key"},
		{"wrong key", ca.CertPEM, otherKey, "ca key: does not match the ca certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCA(tt.cert, tt.key)
			if err == nil || !strings.Contains(err.Error(), tt.wantSubstring) {
				t.Errorf("ParseCA error = %v, want it to contain %q", err, tt.wantSubstring)
			}
		})
	}
}

func TestSignCSR(t *testing.T) {
	ca := testCA(t, "x")
	key, err := NewNodeKey()
	if err != nil {
		t.Fatal(err)
	}
	// The CSR asks for another name; the signer's nodeID wins.
	csr, err := CreateCSR(key, "asked-for")
	if err != nil {
		t.Fatal(err)
	}
	ips := []net.IP{net.ParseIP("10.0.0.7"), net.ParseIP("fd00::7")}
	certPEM, err := ca.SignCSR(csr, "node-7", ips, 0)
	if err != nil {
		t.Fatalf("SignCSR: %v", err)
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "node-7" {
		t.Errorf("CN = %q, want node-7", cert.Subject.CommonName)
	}
	if want := []string{"node-7", ServerName}; !slices.Equal(cert.DNSNames, want) {
		t.Errorf("DNS names = %q, want %q", cert.DNSNames, want)
	}
	if len(cert.IPAddresses) != 2 || !cert.IPAddresses[0].Equal(ips[0]) || !cert.IPAddresses[1].Equal(ips[1]) {
		t.Errorf("IPs = %v, want %v", cert.IPAddresses, ips)
	}
	if want := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}; !slices.Equal(cert.ExtKeyUsage, want) {
		t.Errorf("ext key usage = %v, want %v", cert.ExtKeyUsage, want)
	}
	if cert.IsCA {
		t.Error("node certificate is a CA")
	}
	if d := cert.NotAfter.Sub(time.Now()); d < DefaultCertTTL-time.Minute || d > DefaultCertTTL {
		t.Errorf("valid for %v more, want about %v", d, DefaultCertTTL)
	}
	if cert.SerialNumber.Sign() <= 0 || cert.SerialNumber.BitLen() > 128 {
		t.Errorf("serial %v is not a positive 128-bit number", cert.SerialNumber)
	}
	if !keyMatches(key, cert) {
		t.Error("certificate is not for the CSR's key")
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: ca.Pool(), DNSName: ServerName}); err != nil {
		t.Errorf("does not verify against the CA for %q: %v", ServerName, err)
	}
}

func TestSignCSRRejects(t *testing.T) {
	ca := testCA(t, "x")
	key, _ := NewNodeKey()
	good, err := CreateCSR(key, "node-1")
	if err != nil {
		t.Fatal(err)
	}
	// Change the signed subject without re-signing.
	tampered := bytes.Clone(good)
	i := bytes.Index(tampered, []byte("node-1"))
	if i < 0 {
		t.Fatal("node ID not found in CSR")
	}
	tampered[i] = 'm'

	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edCSR, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ed"}}, edKey)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name          string
		csr           []byte
		nodeID        string
		wantSubstring string
	}{
		{"tampered", tampered, "node-1", "bad signature"},
		{"garbage", []byte("definitely not DER"), "node-1", "certificate request:"},
		{"empty", nil, "node-1", "certificate request:"},
		{"ed25519 key", edCSR, "node-1", "want an ECDSA"},
		{"empty node ID", good, "", "node ID is empty"},
		{"bad node ID", good, "a b", "not allowed"},
		{"long node ID", good, strings.Repeat("a", 254), "at most 253"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ca.SignCSR(tt.csr, tt.nodeID, nil, 0)
			if err == nil || !strings.Contains(err.Error(), tt.wantSubstring) {
				t.Errorf("SignCSR error = %v, want it to contain %q", err, tt.wantSubstring)
			}
		})
	}
}
