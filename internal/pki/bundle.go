package pki

import (
	"crypto/ecdsa"
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

// Bundle is everything a member holds. CA.Key is set only on voters
// (nodes made by `ssi init` or admitted with a voter token); every other
// member keeps the CA certificate alone.
type Bundle struct {
	CA                      *CA
	NodeCertPEM, NodeKeyPEM []byte
	GossipKey               []byte
}

// HoldsCAKey reports whether this member holds the CA's private key.
func (b *Bundle) HoldsCAKey() bool { return b.CA != nil && b.CA.Key != nil }

// bundleFile is one file of a state directory.
type bundleFile struct {
	name string
	perm fs.FileMode
}

// bundleFiles lists the files of a state directory in the order Save
// writes them. The CA key is optional (voters only); the join token file
// is not part of a bundle: only `ssi init` writes one (SaveToken).
var bundleFiles = []bundleFile{
	{CACertFile, 0o644},
	{CAKeyFile, 0o600},
	{NodeCertFile, 0o644},
	{NodeKeyFile, 0o600},
	{GossipKeyFile, 0o600},
}

// Save writes the bundle to dir, creating dir (mode 0700) if needed. Each
// file is replaced atomically: written to a temporary file in dir, synced,
// and renamed over the old one. Keys get mode 0600, certificates 0644. A
// bundle without the CA key removes a ca-key.pem left in dir.
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
		data, ok := files[f.name]
		if !ok {
			if err := os.Remove(filepath.Join(dir, f.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%s: %w", filepath.Join(dir, f.name), statedir.Cause(err))
			}
			continue
		}
		if err := statedir.WriteFile(dir, f.name, data, f.perm); err != nil {
			return err
		}
	}
	return nil
}

// SaveNodeCert replaces the node certificate in dir with certPEM (a
// renewal) after checking it as LoadBundle would, and sets it in b.
func (b *Bundle) SaveNodeCert(dir string, certPEM []byte) error {
	nb := *b
	nb.NodeCertPEM = certPEM
	files, err := nb.encode()
	if err != nil {
		return err
	}
	if _, err := parseBundle(dir, files); err != nil {
		return fmt.Errorf("refusing to save an invalid certificate: %w", err)
	}
	if err := statedir.WriteFile(dir, NodeCertFile, certPEM, 0o644); err != nil {
		return err
	}
	b.NodeCertPEM = certPEM
	return nil
}

// SaveToken writes a join token to dir/join-token (mode 0600): what `ssi
// init` hands the operator for the first joins.
func SaveToken(dir string, t Token) error {
	return statedir.WriteFile(dir, TokenFile, []byte(t.String()+"\n"), 0o600)
}

// LoadBundle reads a bundle saved by Save. An error names the file and says
// what is wrong with it. A missing file gives an error that matches
// fs.ErrNotExist (ca-key.pem may be missing: a member that is not a
// voter). Besides parsing every file, LoadBundle checks that each key
// belongs to its certificate and that the node certificate is signed by
// the CA.
func LoadBundle(dir string) (*Bundle, error) {
	files := make(map[string][]byte, len(bundleFiles))
	for _, f := range bundleFiles {
		path := filepath.Join(dir, f.name)
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) && f.name == CAKeyFile {
			continue
		}
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
	if b.CA == nil || b.CA.Cert == nil {
		return nil, errors.New("bundle has no CA")
	}
	files := map[string][]byte{
		CACertFile:    certToPEM(b.CA.Cert),
		NodeCertFile:  b.NodeCertPEM,
		NodeKeyFile:   b.NodeKeyPEM,
		GossipKeyFile: []byte(hex.EncodeToString(b.GossipKey) + "\n"),
	}
	if b.CA.Key != nil {
		caKey, err := b.CA.KeyPEM()
		if err != nil {
			return nil, err
		}
		files[CAKeyFile] = caKey
	}
	return files, nil
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
	var caKey *ecdsa.PrivateKey
	if keyPEM, ok := files[CAKeyFile]; ok {
		if caKey, err = parseKeyPEM(keyPEM); err != nil {
			return fail(CAKeyFile, err)
		}
		if !keyMatches(caKey, caCert) {
			return fail(CAKeyFile, fmt.Errorf("key does not match the certificate in %s", CACertFile))
		}
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
	return &Bundle{
		CA:          ca,
		NodeCertPEM: files[NodeCertFile],
		NodeKeyPEM:  files[NodeKeyFile],
		GossipKey:   gossipKey,
	}, nil
}
