package pki

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBundleRoundTrip(t *testing.T) {
	b := testBundle(t, "node-1")
	dir := filepath.Join(t.TempDir(), "state") // Save creates it
	if err := b.Save(dir); err != nil {
		t.Fatalf("Save: %v", err)
	}
	// Saving again replaces the files in place.
	if err := b.Save(dir); err != nil {
		t.Fatalf("second Save: %v", err)
	}
	got, err := LoadBundle(dir)
	if err != nil {
		t.Fatalf("LoadBundle: %v", err)
	}
	if got.CA.Sum() != b.CA.Sum() || !got.CA.Key.Equal(b.CA.Key) {
		t.Error("CA differs")
	}
	if !bytes.Equal(got.NodeCertPEM, b.NodeCertPEM) || !bytes.Equal(got.NodeKeyPEM, b.NodeKeyPEM) {
		t.Error("node certificate or key differs")
	}
	if !bytes.Equal(got.GossipKey, b.GossipKey) {
		t.Error("gossip key differs")
	}

	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(bundleFiles) {
		t.Errorf("state dir holds %d entries, want %d (temporary files left?)", len(entries), len(bundleFiles))
	}
	for _, f := range bundleFiles {
		fi, err := os.Stat(filepath.Join(dir, f.name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != f.perm {
			t.Errorf("%s has mode %v, want %v", f.name, fi.Mode().Perm(), f.perm)
		}
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("state dir has mode %v, want 0700", fi.Mode().Perm())
	}
	for name, want := range map[string]string{GossipKeyFile: ""} {
		data, _ := os.ReadFile(filepath.Join(dir, name))
		if strings.Count(string(data), "\n") != 1 || (want != "" && string(data) != want) {
			t.Errorf("%s = %q, want one line %q", name, data, want)
		}
	}
}

func TestLoadBundleErrors(t *testing.T) {
	b := testBundle(t, "node-1")
	other := testBundle(t, "node-2") // a different cluster
	_, otherNodeKey := testNode(t, b.CA, "node-3")
	otherCAKey, _ := other.CA.KeyPEM()

	tests := []struct {
		name          string
		file          string
		data          []byte // nil: remove the file
		wantSubstring string
	}{
		{"missing", NodeCertFile, nil, "node.pem: missing"},
		{"garbage cert", NodeCertFile, []byte("garbage"), "node.pem: not a PEM certificate"},
		{"garbage CA", CACertFile, []byte("garbage"), "ca.pem: not a PEM certificate"},
		{"CA is not a CA", CACertFile, b.NodeCertPEM, `ca.pem: "node-1" is not a CA certificate`},
		{"garbage CA key", CAKeyFile, []byte(""), "ca-key.pem: not a PEM private key"},
		{"wrong CA key", CAKeyFile, otherCAKey, "ca-key.pem: key does not match the certificate in ca.pem"},
		{"foreign node cert", NodeCertFile, other.NodeCertPEM, "node.pem: not signed by the CA in ca.pem"},
		{"garbage node key", NodeKeyFile, []byte("-----BEGIN NONSENSE-----\n-----END NONSENSE-----\n"), `node-key.pem: not a PEM private key (PEM block is "NONSENSE")`},
		{"wrong node key", NodeKeyFile, otherNodeKey, "node-key.pem: key does not match the certificate in node.pem"},
		{"short gossip key", GossipKeyFile, []byte("abcd\n"), "gossip.key: not a 32-byte key"},
		{"binary gossip key", GossipKeyFile, bytes.Repeat([]byte{0}, 32), "gossip.key: not a 32-byte key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := b.Save(dir); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, tt.file)
			var err error
			if tt.data == nil {
				err = os.Remove(path)
			} else {
				err = os.WriteFile(path, tt.data, 0o600)
			}
			if err != nil {
				t.Fatal(err)
			}
			_, err = LoadBundle(dir)
			if err == nil || !strings.Contains(err.Error(), tt.wantSubstring) {
				t.Fatalf("LoadBundle error = %v, want it to contain %q", err, tt.wantSubstring)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %s", err, path)
			}
			if tt.data == nil && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("error %v does not match fs.ErrNotExist", err)
			}
		})
	}
}

// TestBundleWithoutCAKey: a member that is not a voter keeps the CA
// certificate alone; saving such a bundle over a voter's removes the key.
func TestBundleWithoutCAKey(t *testing.T) {
	b := testBundle(t, "node-1")
	dir := t.TempDir()
	if err := b.Save(dir); err != nil {
		t.Fatal(err)
	}
	m := *b
	m.CA = b.CA.CertOnly()
	if err := m.Save(dir); err != nil {
		t.Fatalf("Save without CA key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, CAKeyFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ca-key.pem still there after saving a bundle without it (%v)", err)
	}
	got, err := LoadBundle(dir)
	if err != nil {
		t.Fatalf("LoadBundle: %v", err)
	}
	if got.HoldsCAKey() || got.CA.Sum() != b.CA.Sum() {
		t.Errorf("loaded bundle: holds key %v, same CA %v", got.HoldsCAKey(), got.CA.Sum() == b.CA.Sum())
	}
	if _, err := got.CA.SignCSR(nil, "x", nil, 0); !errors.Is(err, ErrNoCAKey) {
		t.Errorf("SignCSR without the key: %v, want ErrNoCAKey", err)
	}
}

func TestSaveInvalidBundleWritesNothing(t *testing.T) {
	good := testBundle(t, "node-1")
	other := testBundle(t, "node-2")
	tests := []struct {
		name          string
		edit          func(b *Bundle)
		wantSubstring string
	}{
		{"no CA", func(b *Bundle) { b.CA = nil }, "bundle has no CA"},
		{"no node cert", func(b *Bundle) { b.NodeCertPEM = nil }, "node.pem: not a PEM certificate"},
		{"foreign node cert", func(b *Bundle) { b.NodeCertPEM, b.NodeKeyPEM = other.NodeCertPEM, other.NodeKeyPEM }, "node.pem: not signed"},
		{"short gossip key", func(b *Bundle) { b.GossipKey = b.GossipKey[:16] }, "gossip.key: not a 32-byte key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := *good
			tt.edit(&b)
			dir := filepath.Join(t.TempDir(), "state")
			err := b.Save(dir)
			if err == nil || !strings.Contains(err.Error(), tt.wantSubstring) {
				t.Errorf("Save error = %v, want it to contain %q", err, tt.wantSubstring)
			}
			if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Save created %s (%v), want nothing written", dir, err)
			}
		})
	}
}

func TestSaveReadOnlyDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root, which ignores directory permissions, so a read-only directory cannot make Save fail")
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o700) })
	err := testBundle(t, "node-1").Save(dir)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, CACertFile)) || !errors.Is(err, fs.ErrPermission) {
		t.Errorf("Save error = %v, want a permission error naming %s", err, CACertFile)
	}
}

// TestSaveFailsMidway makes one file impossible to replace (a directory
// stands in its place, which stops root too) and checks that the error names
// it, that files after it are left as they were, and that no temporary files
// remain.
func TestSaveFailsMidway(t *testing.T) {
	dir := t.TempDir()
	old, b := testBundle(t, "old"), testBundle(t, "new")
	if err := old.Save(dir); err != nil {
		t.Fatal(err)
	}
	blocked := filepath.Join(dir, GossipKeyFile)
	if err := os.Remove(blocked); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(blocked, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(blocked, "keep"), nil, 0o600); err != nil {
		t.Fatal(err)
	}

	err := b.Save(dir)
	if err == nil || !strings.Contains(err.Error(), "write "+blocked+": ") {
		t.Fatalf("Save error = %v, want one naming %s", err, blocked)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, CACertFile)); !bytes.Equal(data, b.CA.CertPEM) {
		t.Error("ca.pem, written before the failure, is not the new one")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}
