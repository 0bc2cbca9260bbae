package agent

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDecodeIdentity(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   string
		want Identity
		err  string // substring; "" means success
	}{
		{"full", `{"id":"3f2a9c1d7e5b4a60","name":"node1","cluster":"prod","number":3,"incarnation":7,"bootstrap":true}`,
			Identity{ID: "3f2a9c1d7e5b4a60", Name: "node1", Cluster: "prod", Number: 3, Incarnation: 7, Bootstrap: true}, ""},
		{"not registered yet", `{"id":"a","name":"b","cluster":"c"}`, Identity{ID: "a", Name: "b", Cluster: "c"}, ""},
		{"unknown field ignored", `{"id":"a","name":"b","cluster":"c","extra":1}`, Identity{ID: "a", Name: "b", Cluster: "c"}, ""},
		{"empty", ``, Identity{}, "node.json:"},
		{"truncated", `{"id":"a","name":`, Identity{}, "node.json:"},
		{"not an object", `"node1"`, Identity{}, "node.json:"},
		{"null", `null`, Identity{}, "id, name and cluster must be set"},
		{"no id", `{"name":"b","cluster":"c"}`, Identity{}, "id, name and cluster must be set"},
		{"no name", `{"id":"a","cluster":"c"}`, Identity{}, "id, name and cluster must be set"},
		{"no cluster", `{"id":"a","name":"b"}`, Identity{}, "id, name and cluster must be set"},
		{"negative number", `{"id":"a","name":"b","cluster":"c","number":-2}`, Identity{}, "bad number -2"},
		{"negative incarnation", `{"id":"a","name":"b","cluster":"c","incarnation":-1}`, Identity{}, "node.json:"},
		{"string number", `{"id":"a","name":"b","cluster":"c","number":"3"}`, Identity{}, "node.json:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := DecodeIdentity([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("DecodeIdentity(%q) = %+v, %v; want an error with %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || *got != tc.want {
				t.Fatalf("DecodeIdentity(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestIdentitySaveLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := LoadIdentity(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("LoadIdentity of an empty dir = %v, want ErrNotExist", err)
	}
	id := &Identity{ID: "3f2a9c1d7e5b4a60", Name: "node1", Cluster: "prod", Number: 2, Incarnation: 5, Bootstrap: true}
	if err := id.Save(dir); err != nil {
		t.Fatal(err)
	}
	got, err := LoadIdentity(dir)
	if err != nil || *got != *id {
		t.Fatalf("LoadIdentity = %+v, %v; want %+v", got, err, id)
	}
	fi, err := os.Stat(filepath.Join(dir, IdentityFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("node.json mode %v, want 0600", fi.Mode().Perm())
	}
	// Saving again replaces the file and leaves no temporary behind.
	id.Incarnation++
	if err := id.Save(dir); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadIdentity(dir); err != nil || got.Incarnation != 6 {
		t.Fatalf("after a second Save: %+v, %v", got, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != IdentityFile {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("state dir holds %v, want only %s", names, IdentityFile)
	}
	// A corrupt file is an error, not a zero identity.
	if err := os.WriteFile(filepath.Join(dir, IdentityFile), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadIdentity(dir); err == nil || errors.Is(err, os.ErrNotExist) {
		t.Fatalf("LoadIdentity of a corrupt file = %v", err)
	}
}

func TestIdentitySaveMissingDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "missing")
	err := (&Identity{ID: "a", Name: "b", Cluster: "c"}).Save(dir)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, IdentityFile)) {
		t.Fatalf("Save into a missing dir = %v, want an error naming the file", err)
	}
}

func TestNewNodeID(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		id, err := NewNodeID()
		if err != nil {
			t.Fatal(err)
		}
		if b, err := hex.DecodeString(id); err != nil || len(b) != 8 {
			t.Fatalf("NewNodeID() = %q, want 16 hex digits", id)
		}
		if seen[id] {
			t.Fatalf("NewNodeID() repeated %q", id)
		}
		seen[id] = true
	}
}

func TestCheckStateDir(t *testing.T) {
	t.Parallel()
	base := t.TempDir()

	t.Run("creates nested dir", func(t *testing.T) {
		dir := filepath.Join(base, "a", "b", "state")
		if err := CheckStateDir(dir); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(dir)
		if err != nil || !fi.IsDir() {
			t.Fatalf("state dir not created: %v", err)
		}
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("state dir mode %v, want 0700", fi.Mode().Perm())
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 0 {
			t.Errorf("CheckStateDir left %d files behind", len(entries))
		}
	})
	t.Run("existing dir", func(t *testing.T) {
		if err := CheckStateDir(base); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("parent is a file", func(t *testing.T) {
		file := filepath.Join(base, "plain-file")
		if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(file, "state")
		err := CheckStateDir(dir)
		if err == nil {
			t.Fatal("CheckStateDir under a regular file succeeded")
		}
		if !strings.Contains(err.Error(), dir) {
			t.Errorf("error %q does not name %s", err, dir)
		}
		if !strings.Contains(err.Error(), "not a directory") {
			t.Errorf("error %q does not say why", err)
		}
	})
	t.Run("path is a file", func(t *testing.T) {
		file := filepath.Join(base, "another-file")
		if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := CheckStateDir(file); err == nil || !strings.Contains(err.Error(), file) {
			t.Fatalf("CheckStateDir(a file) = %v, want an error naming it", err)
		}
	})
	t.Run("read-only dir", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("running as root: directory permissions do not stop root's writes, so a read-only directory cannot be made without a read-only mount")
		}
		dir := filepath.Join(base, "ro")
		if err := os.Mkdir(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o700) })
		err := CheckStateDir(dir)
		if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "not writable") ||
			!errors.Is(err, fs.ErrPermission) {
			t.Fatalf("CheckStateDir(read-only) = %v, want a 'not writable' permission error naming %s", err, dir)
		}
	})
}

// FuzzDecodeIdentity checks that DecodeIdentity never panics, that what it
// accepts obeys its rules, and that a saved identity decodes to itself.
func FuzzDecodeIdentity(f *testing.F) {
	f.Add([]byte(`{"id":"3f2a9c1d7e5b4a60","name":"node1","cluster":"prod","number":3,"incarnation":7,"bootstrap":true}`))
	f.Add([]byte(`{"id":"a","name":"b","cluster":"c"}`))
	f.Add([]byte(`{"id":"a","name":"b","cluster":"c","number":-1}`))
	f.Add([]byte(`{"id":"","name":"b","cluster":"c"}`))
	f.Add([]byte(`null`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := DecodeIdentity(b)
		if err != nil {
			return
		}
		if id.ID == "" || id.Name == "" || id.Cluster == "" || id.Number < 0 {
			t.Fatalf("DecodeIdentity(%q) accepted %+v", b, id)
		}
		enc, err := json.MarshalIndent(id, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeIdentity(enc)
		if err != nil || *again != *id {
			t.Fatalf("re-decode of %s = %+v, %v; want %+v", enc, again, err, id)
		}
	})
}
