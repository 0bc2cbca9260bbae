package rexec

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLookPathAsSkipsUnreachable: a PATH entry under a directory the user
// may not search is passed over, as a shell run by the user would.
func TestLookPathAsSkipsUnreachable(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: the test owns files as another uid")
	}
	base := t.TempDir()
	os.Chmod(filepath.Dir(base), 0o755) // t.TempDir's parent is 0700
	os.Chmod(base, 0o755)
	private := filepath.Join(base, "home")   // 0700, root's
	shims := filepath.Join(private, "shims") // 0755 inside it
	public := filepath.Join(base, "usr/bin") // reachable by all
	for _, d := range []string{shims, public} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(base, "usr"), 0o755)
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{shims, public} {
		if err := os.WriteFile(filepath.Join(d, "prog"), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	path := shims + ":" + public
	for _, tc := range []struct {
		name string
		s    Spec
		want string
	}{
		{"root reaches its own home", Spec{UID: 0, GID: 0, Dir: "/"}, filepath.Join(shims, "prog")},
		{"a user passes over it", Spec{UID: 65534, GID: 65534, Dir: "/"}, filepath.Join(public, "prog")},
	} {
		got, err := lookPathAs("prog", path, &tc.s)
		if err != nil || got != tc.want {
			t.Errorf("%s: lookPathAs = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	s := Spec{UID: 65534, GID: 65534, Dir: "/"}
	if _, err := lookPathAs("prog", shims, &s); err == nil {
		t.Errorf("only the unreachable entry: found; want command not found")
	}
}
