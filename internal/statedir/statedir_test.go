package statedir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		data string
		perm os.FileMode
	}{
		{"key", "secret", 0o600},
		{"cert", "public", 0o644},
		{"key", "replaced", 0o600}, // replaces the first
	} {
		if err := WriteFile(dir, tc.name, []byte(tc.data), tc.perm); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, tc.name))
		if err != nil || string(got) != tc.data {
			t.Errorf("%s = %q, %v; want %q", tc.name, got, err, tc.data)
		}
		if fi, _ := os.Stat(filepath.Join(dir, tc.name)); fi.Mode().Perm() != tc.perm {
			t.Errorf("%s mode %v, want %v", tc.name, fi.Mode().Perm(), tc.perm)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("temporary files left: %v", entries)
	}
}

func TestCheckNamesThePath(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := Check(filepath.Join(file, "state"))
	if err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("Check under a regular file: %v", err)
	}
	if err := Check(filepath.Join(t.TempDir(), "new")); err != nil {
		t.Fatalf("Check of a new directory: %v", err)
	}
}
