package pki

import (
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ssi-cluster/ssi/internal/statedir"
)

// Files in a state directory.
const (
	CACertFile    = "ca.pem"
	CAKeyFile     = "ca-key.pem"
	NodeCertFile  = "node.pem"
	NodeKeyFile   = "node-key.pem"
	GossipKeyFile = "gossip.key"
	TokenFile     = "join-token"
)

// gossipKeyLen is the length of the gossip key: AES-256.
const gossipKeyLen = 32

// Bundle is everything a member holds.
type Bundle struct {
	CA                      *CA
	NodeCertPEM, NodeKeyPEM []byte
	GossipKey               []byte
	Token                   Token
}

// bundleFile is one file of a state directory.
type bundleFile struct {
	name string
	perm fs.FileMode
}

// bundleFiles lists the files of a state directory in the order Save
// writes them.
var bundleFiles = []bundleFile{
	{CACertFile, 0o644},
	{CAKeyFile, 0o600},
	{NodeCertFile, 0o644},
	{NodeKeyFile, 0o600},
	{GossipKeyFile, 0o600},
	{TokenFile, 0o600},
}

// Save writes the bundle to dir, creating dir (mode 0700) if needed. Each
// file is replaced atomically: written to a temporary file in dir, synced,
// and renamed over the old one. Keys and the token get mode 0600,
// certificates 0644.
//
// Save first checks the bundle as LoadBundle would and writes nothing if it
// is invalid. A write error names the file and the cause; files not yet
// written at that point are left as they were.
func (b *Bundle) Save(dir string) error {
	files, err := b.encode()
	if err != nil {
		return err
	}
	if _, err := parseBundle(dir, files); err != nil {
		return fmt.Errorf("refusing to save an invalid bundle: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	for _, f := range bundleFiles {
		if err := statedir.WriteFile(dir, f.name, files[f.name], f.perm); err != nil {
			return err
		}
	}
	return nil
}

// LoadBundle reads a bundle saved by Save. An error names the file and says
// what is wrong with it. A missing file gives an error that matches
// fs.ErrNotExist. Besides parsing every file, LoadBundle checks that each
// key belongs to its certificate, that the node certificate is signed by the
// CA, and that the token pins the CA.
func LoadBundle(dir string) (*Bundle, error) {
	files := make(map[string][]byte, len(bundleFiles))
	for _, f := range bundleFiles {
		path := filepath.Join(dir, f.name)
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: missing: %w", path, fs.ErrNotExist)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, statedir.Cause(err))
		}
		files[f.name] = data
	}
	return parseBundle(dir, files)
}

// ServerTLS returns the listener TLS configuration for this member; see
// the function ServerTLS.
func (b *Bundle) ServerTLS(allowUnauthenticated bool) (*tls.Config, error) {
	return ServerTLS(b.NodeCertPEM, b.NodeKeyPEM, b.CA.Pool(), allowUnauthenticated)
}

// ClientTLS returns the mutual-TLS client configuration for this member;
// see the function ClientTLS.
func (b *Bundle) ClientTLS() (*tls.Config, error) {
	return ClientTLS(b.NodeCertPEM, b.NodeKeyPEM, b.CA.Pool())
}

// encode returns the contents of every file of the bundle.
func (b *Bundle) encode() (map[string][]byte, error) {
	if b.CA == nil || b.CA.Cert == nil || b.CA.Key == nil {
		return nil, errors.New("bundle has no CA")
	}
	caKey, err := b.CA.KeyPEM()
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		CACertFile:    certToPEM(b.CA.Cert),
		CAKeyFile:     caKey,
		NodeCertFile:  b.NodeCertPEM,
		NodeKeyFile:   b.NodeKeyPEM,
		GossipKeyFile: []byte(hex.EncodeToString(b.GossipKey) + "\n"),
		TokenFile:     []byte(b.Token.String() + "\n"),
	}, nil
}

// parseBundle parses and cross-checks the files of a bundle. Errors are
// prefixed with the file's path in dir.
func parseBundle(dir string, files map[string][]byte) (*Bundle, error) {
	fail := func(name string, err error) (*Bundle, error) {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, name), err)
	}
	caCert, err := parseCACert(files[CACertFile])
	if err != nil {
		return fail(CACertFile, err)
	}
	caKey, err := parseKeyPEM(files[CAKeyFile])
	if err != nil {
		return fail(CAKeyFile, err)
	}
	if !keyMatches(caKey, caCert) {
		return fail(CAKeyFile, fmt.Errorf("key does not match the certificate in %s", CACertFile))
	}
	nodeCert, err := parseCertPEM(files[NodeCertFile])
	if err != nil {
		return fail(NodeCertFile, err)
	}
	if err := nodeCert.CheckSignatureFrom(caCert); err != nil {
		return fail(NodeCertFile, fmt.Errorf("not signed by the CA in %s: %w", CACertFile, err))
	}
	nodeKey, err := parseKeyPEM(files[NodeKeyFile])
	if err != nil {
		return fail(NodeKeyFile, err)
	}
	if !keyMatches(nodeKey, nodeCert) {
		return fail(NodeKeyFile, fmt.Errorf("key does not match the certificate in %s", NodeCertFile))
	}
	gossipKey, err := hex.DecodeString(strings.TrimSpace(string(files[GossipKeyFile])))
	if err != nil || len(gossipKey) != gossipKeyLen {
		return fail(GossipKeyFile, fmt.Errorf("not a %d-byte key written as %d hex characters", gossipKeyLen, 2*gossipKeyLen))
	}
	ca := &CA{Cert: caCert, Key: caKey, CertPEM: certToPEM(caCert)}
	token, err := ParseToken(string(files[TokenFile]))
	if err != nil {
		return fail(TokenFile, err)
	}
	if token.CASum != ca.Sum() {
		return fail(TokenFile, fmt.Errorf("token pins a different CA than the one in %s", CACertFile))
	}
	return &Bundle{
		CA:          ca,
		NodeCertPEM: files[NodeCertFile],
		NodeKeyPEM:  files[NodeKeyFile],
		GossipKey:   gossipKey,
		Token:       token,
	}, nil
}
