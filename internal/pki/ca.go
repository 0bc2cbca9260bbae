package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"
)

const (
	caValidity = 10 * 365 * 24 * time.Hour
	// DefaultCertTTL is how long a node certificate is valid by default.
	// Agents renew theirs at half its life (see package agent), so a
	// stolen certificate is good for at most this long, and a removed
	// node's for no time at all (removal revokes it at once).
	DefaultCertTTL = 72 * time.Hour
	// MinCertTTL bounds a configured lifetime from below: renewal must
	// have time to happen.
	MinCertTTL = time.Minute
	// clockSkew backdates NotBefore so that a certificate issued on one
	// node is already valid on a peer whose clock is a little behind.
	clockSkew = 5 * time.Minute
	// ClockSkew is clockSkew for the agent's renewal arithmetic: a node
	// certificate was issued at NotBefore + ClockSkew.
	ClockSkew = clockSkew
	// maxNodeIDLen is the longest DNS name allowed by RFC 1035.
	maxNodeIDLen = 253
)

// CA is the cluster certificate authority.
type CA struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
}

// NewCA creates a new cluster CA: an ECDSA P-256 key and a self-signed
// certificate with the common name "ssi cluster CA <clusterName>", valid for
// ten years, that may sign only leaf certificates.
func NewCA(clusterName string) (*CA, error) {
	key, err := NewNodeKey()
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "ssi cluster CA " + clusterName},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(caValidity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true, // node certificates only, no intermediates
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse new CA certificate: %w", err)
	}
	return &CA{Cert: cert, Key: key, CertPEM: certToPEM(cert)}, nil
}

// ParseCA parses a CA certificate and its private key from PEM, and checks
// that the certificate is a CA certificate and the key belongs to it.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := parseCACert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("ca certificate: %w", err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("ca key: %w", err)
	}
	if !keyMatches(key, cert) {
		return nil, errors.New("ca key: does not match the ca certificate")
	}
	return &CA{Cert: cert, Key: key, CertPEM: certToPEM(cert)}, nil
}

// ErrNoCAKey is returned when a node that does not hold the CA's private
// key is asked to sign: only voters hold it.
var ErrNoCAKey = errors.New("this node does not hold the cluster CA's key (only voters do)")

// CertOnly returns a CA that holds only the certificate of ca: what a
// member that is not a voter keeps.
func (ca *CA) CertOnly() *CA { return &CA{Cert: ca.Cert, CertPEM: ca.CertPEM} }

// ParseCACert parses a CA certificate alone (no key).
func ParseCACert(certPEM []byte) (*CA, error) {
	cert, err := parseCACert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("ca certificate: %w", err)
	}
	return &CA{Cert: cert, CertPEM: certToPEM(cert)}, nil
}

// KeyPEM returns the CA's private key in PEM form.
func (ca *CA) KeyPEM() ([]byte, error) { return KeyPEM(ca.Key) }

// Sum returns the SHA-256 of the CA certificate's DER bytes; join tokens
// carry it to pin the CA.
func (ca *CA) Sum() [32]byte { return sha256.Sum256(ca.Cert.Raw) }

// Pool returns a certificate pool holding only the CA certificate.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pool
}

// SignCSR checks the signature of a DER certificate signing request and
// issues a node certificate for its public key: CN = nodeID, DNS SANs
// {nodeID, ServerName}, the given IPs, usable for TLS server and client
// authentication, valid for ttl (DefaultCertTTL when 0), with a random
// 128-bit serial.
//
// Everything in the certificate except the public key comes from the
// arguments, not from the request: the member that signs decides who the
// joiner is. nodeID must be 1 to 253 characters of letters, digits, '-', '.'
// and '_', and the key must be ECDSA P-256 or P-384.
func (ca *CA) SignCSR(csrDER []byte, nodeID string, ips []net.IP, ttl time.Duration) (certPEM []byte, err error) {
	return ca.signCSR(csrDER, nodeID, ips, ttl, false)
}

// VoterOU is the organizational unit of a voter's certificate: raft
// listeners accept only certificates that carry it ([PeerIsVoter]), so a
// member, which never votes, cannot speak raft to anyone.
const VoterOU = "ssi-voter"

// SignVoterCSR is SignCSR for a voter: the certificate carries VoterOU.
func (ca *CA) SignVoterCSR(csrDER []byte, nodeID string, ips []net.IP, ttl time.Duration) (certPEM []byte, err error) {
	return ca.signCSR(csrDER, nodeID, ips, ttl, true)
}

func (ca *CA) signCSR(csrDER []byte, nodeID string, ips []net.IP, ttl time.Duration, voter bool) (certPEM []byte, err error) {
	if ca.Key == nil {
		return nil, ErrNoCAKey
	}
	if err := checkNodeID(nodeID); err != nil {
		return nil, err
	}
	if ttl == 0 {
		ttl = DefaultCertTTL
	}
	if ttl < MinCertTTL {
		return nil, fmt.Errorf("certificate lifetime %v is shorter than %v", ttl, MinCertTTL)
	}
	pub, err := parseCSR(csrDER)
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: nodeID, OrganizationalUnit: voterOU(voter)},
		DNSNames:              dnsNames(nodeID),
		IPAddresses:           ips,
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(ttl),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("sign node certificate: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

func voterOU(voter bool) []string {
	if voter {
		return []string{VoterOU}
	}
	return nil
}

// IssueVoter is IssueNode for a voter. `ssi init` uses it for the first
// node, which has no one to join.
func (ca *CA) IssueVoter(nodeID string, ips []net.IP, ttl time.Duration) (certPEM, keyPEM []byte, err error) {
	return ca.issue(nodeID, ips, ttl, true)
}

// IssueNode creates a new node key and a member's certificate for it
// signed by ca.
func (ca *CA) IssueNode(nodeID string, ips []net.IP, ttl time.Duration) (certPEM, keyPEM []byte, err error) {
	return ca.issue(nodeID, ips, ttl, false)
}

func (ca *CA) issue(nodeID string, ips []net.IP, ttl time.Duration, voter bool) (certPEM, keyPEM []byte, err error) {
	key, err := NewNodeKey()
	if err != nil {
		return nil, nil, err
	}
	csr, err := CreateCSR(key, nodeID)
	if err != nil {
		return nil, nil, err
	}
	if certPEM, err = ca.signCSR(csr, nodeID, ips, ttl, voter); err != nil {
		return nil, nil, err
	}
	if keyPEM, err = KeyPEM(key); err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

// NewNodeKey generates an ECDSA P-256 private key.
func NewNodeKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return key, nil
}

// KeyPEM encodes an ECDSA private key as a SEC 1 "EC PRIVATE KEY" PEM block.
func KeyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	if k == nil {
		return nil, errors.New("encode key: no key")
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// CreateCSR returns a DER certificate signing request for key with the
// common name and DNS names a node certificate for nodeID will carry.
func CreateCSR(key *ecdsa.PrivateKey, nodeID string) ([]byte, error) {
	if err := checkNodeID(nodeID); err != nil {
		return nil, err
	}
	tmpl := &x509.CertificateRequest{
		Subject:  pkix.Name{CommonName: nodeID},
		DNSNames: dnsNames(nodeID),
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return nil, fmt.Errorf("create certificate request: %w", err)
	}
	return der, nil
}

// dnsNames returns the DNS SANs of nodeID's certificate.
func dnsNames(nodeID string) []string {
	if nodeID == ServerName {
		return []string{ServerName}
	}
	return []string{nodeID, ServerName}
}

// CheckNodeID rejects node IDs that cannot be a DNS SAN and a common name.
func CheckNodeID(id string) error { return checkNodeID(id) }

func checkNodeID(id string) error {
	if id == "" {
		return errors.New("node ID is empty")
	}
	if len(id) > maxNodeIDLen {
		return fmt.Errorf("node ID is %d characters long, at most %d allowed", len(id), maxNodeIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return fmt.Errorf("node ID %q: character %q not allowed (use letters, digits, '-', '.', '_')", id, c)
		}
	}
	return nil
}

// newSerial returns a random positive 128-bit certificate serial number.
func newSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("generate serial number: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

func certToPEM(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
}

// parseCertPEM parses the first PEM block of data as a certificate.
func parseCertPEM(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("not a PEM certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("invalid certificate: %w", err)
	}
	return cert, nil
}

// parseCACert parses a PEM certificate and checks it may sign certificates.
func parseCACert(data []byte) (*x509.Certificate, error) {
	cert, err := parseCertPEM(data)
	if err != nil {
		return nil, err
	}
	if !cert.BasicConstraintsValid || !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%q is not a CA certificate", cert.Subject.CommonName)
	}
	if _, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok {
		return nil, fmt.Errorf("want an ECDSA key, got %v", cert.PublicKeyAlgorithm)
	}
	return cert, nil
}

// parseKeyPEM parses the first PEM block of data as an ECDSA private key,
// in SEC 1 ("EC PRIVATE KEY") or PKCS #8 ("PRIVATE KEY") form.
func parseKeyPEM(data []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("not a PEM private key")
	}
	switch block.Type {
	case "EC PRIVATE KEY":
		key, err := x509.ParseECPrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("invalid EC private key: %w", err)
		}
		return key, nil
	case "PRIVATE KEY":
		key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("invalid PKCS #8 private key: %w", err)
		}
		ec, ok := key.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("want an ECDSA key, got %T", key)
		}
		return ec, nil
	default:
		return nil, fmt.Errorf("not a PEM private key (PEM block is %q)", block.Type)
	}
}

// keyMatches reports whether key is the private key of cert.
func keyMatches(key *ecdsa.PrivateKey, cert *x509.Certificate) bool {
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	return ok && key.PublicKey.Equal(pub)
}

// CheckCSR parses a DER certificate request and checks its signature and
// key type, as SignCSR does, without signing: a master checks a join's
// request before it commits the registration.
func CheckCSR(csrDER []byte) error {
	_, err := parseCSR(csrDER)
	return err
}

func parseCSR(csrDER []byte) (*ecdsa.PublicKey, error) {
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request: bad signature: %w", err)
	}
	pub, ok := csr.PublicKey.(*ecdsa.PublicKey)
	if !ok || (pub.Curve != elliptic.P256() && pub.Curve != elliptic.P384()) {
		return nil, fmt.Errorf("certificate request: want an ECDSA P-256 or P-384 key, got %v", csr.PublicKeyAlgorithm)
	}
	return pub, nil
}

// CertLife returns when a PEM certificate's validity starts and ends.
func CertLife(certPEM []byte) (from, until time.Time, err error) {
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	return cert.NotBefore, cert.NotAfter, nil
}

// CSR returns a certificate request for the bundle's node key (a renewal
// keeps the key).
func (b *Bundle) CSR(nodeID string) ([]byte, error) {
	key, err := parseKeyPEM(b.NodeKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	return CreateCSR(key, nodeID)
}

// KeyHash returns the hex SHA-256 of a public key's DER form: the
// registry binds each node ID to its key's hash, so that only the holder
// of that key can join again under that ID or renew its certificate.
func KeyHash(pub *ecdsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(der)
	return hex.EncodeToString(h[:]), nil
}

// CSRKeyHash returns the KeyHash of a checked certificate request's key.
func CSRKeyHash(csrDER []byte) (string, error) {
	pub, err := parseCSR(csrDER)
	if err != nil {
		return "", err
	}
	return KeyHash(pub)
}

// CertKeyHash returns the KeyHash of a PEM certificate's key.
func CertKeyHash(certPEM []byte) (string, error) {
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return "", err
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return "", errors.New("certificate key is not ECDSA")
	}
	return KeyHash(pub)
}

// NodeKey returns the bundle's node private key.
func (b *Bundle) NodeKey() (*ecdsa.PrivateKey, error) { return parseKeyPEM(b.NodeKeyPEM) }

// RenewAt returns when a certificate valid from..until is to be renewed:
// at half its life counted from its issue (NotBefore is backdated by
// ClockSkew), or at once when it lives longer than ttl, the lifetime
// now configured (an operator who shortens cert_ttl is obeyed at once).
func RenewAt(from, until time.Time, ttl time.Duration) time.Time {
	issued := from.Add(clockSkew)
	if !issued.Before(until) {
		issued = from
	}
	life := until.Sub(issued)
	if life > ttl+time.Minute {
		return issued
	}
	return issued.Add(life / 2)
}
