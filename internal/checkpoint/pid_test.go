package checkpoint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCloneArgs(t *testing.T) {
	tests := []struct {
		name string
		tid  int
		want []uint64 // the ten fields
		arr  []byte   // the set_tid array after them
	}{
		{"no set_tid", 0, []uint64{unix.CLONE_PARENT, 0, 0, 0, 0, 0x1000, 4032, 0, 0, 0}, nil},
		{"set_tid", 4242, []uint64{unix.CLONE_PARENT, 0, 0, 0, 0, 0x1000, 4032, 0, 0x7000 + cloneArgsSize, 1},
			binary.LittleEndian.AppendUint32(nil, 4242)},
	}
	for _, tt := range tests {
		b := cloneArgs(0x7000, unix.CLONE_PARENT, 0x1000, 4032, tt.tid)
		var want []byte
		for _, v := range tt.want {
			want = binary.LittleEndian.AppendUint64(want, v)
		}
		if want = append(want, tt.arr...); !bytes.Equal(b, want) {
			t.Errorf("%s: got % x\nwant % x", tt.name, b, want)
		}
	}
}

// TestRestoreKeepsPid dumps a counter, kills and reaps it, and restores it
// with the same pid; restored again while that process runs, the image
// gets another pid, without an error.
func TestRestoreKeepsPid(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	out := filepath.Join(t.TempDir(), "out")
	cmd, _ := start(t, buildC(t, "counter"), out)
	waitLines(t, out, 10)
	pid := cmd.Process.Pid
	img, res := migrateWith(t, pid, stub, migration{dead: func() { cmd.Wait() }})
	if !res.PidKept || res.Pid != pid || res.PidErr != nil {
		t.Fatalf("restored as %d (kept %v: %v), want the image's pid %d", res.Pid, res.PidKept, res.PidErr, pid)
	}
	checkCount(t, waitLines(t, out, len(readLines(out))+10))

	// More restores of the same image while pid is alive: another pid,
	// and no error.
	tests := []struct {
		name    string
		o       RestoreOptions
		wantErr error // in PidErr
	}{
		{"pid in use", RestoreOptions{}, unix.EEXIST},
		{"any pid", RestoreOptions{AnyPid: true}, nil},
	}
	for _, tt := range tests {
		res2, err := RestoreWith(img, stub, tt.o)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		defer reap(t, res2.Process)
		if res2.PidKept || res2.Pid == pid || !errors.Is(res2.PidErr, tt.wantErr) || tt.wantErr == nil && res2.PidErr != nil {
			t.Fatalf("%s: restored as %d (kept %v: %v), want another pid than %d and %v", tt.name, res2.Pid, res2.PidKept, res2.PidErr, pid, tt.wantErr)
		}
		t.Logf("%s: pid %d: %v", tt.name, res2.Pid, res2.PidErr)
		n := len(readLines(out))
		waitLines(t, out, n+10) // all write
		if !running(pid) || !running(res2.Pid) {
			t.Fatalf("%s: running: %d %v, %d %v", tt.name, pid, running(pid), res2.Pid, running(res2.Pid))
		}
	}
}

// TestRestoreKeepsTids restores a four-thread process, reaped first, with
// its pid and every thread id.
func TestRestoreKeepsTids(t *testing.T) {
	needTracing(t)
	stub := buildC(t, "stub")
	out := filepath.Join(t.TempDir(), "out")
	cmd, _ := start(t, buildC(t, "mtcount", "-pthread"), out)
	waitLines(t, out, 5)
	img, res := migrateWith(t, cmd.Process.Pid, stub, migration{dead: func() { cmd.Wait() }})
	var want []int
	for _, th := range img.Threads {
		want = append(want, th.Tid)
	}
	if !res.PidKept || res.TidsKept != len(want) || !slices.Equal(res.Tids, want) {
		t.Fatalf("pid %d (kept %v), threads %v (%d kept); want pid %d, threads %v", res.Pid, res.PidKept, res.Tids, res.TidsKept, img.Pid, want)
	}
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(res.Pid) + "/task")
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, e := range ents {
		tid, _ := strconv.Atoi(e.Name())
		got = append(got, tid)
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(append(want, img.Pid)))
	if !slices.Equal(got, want) {
		t.Fatalf("tasks %v, want %v", got, want)
	}
	before := readLines(out)
	at := checkThreadLines(t, before)
	last := checkThreadLines(t, waitLines(t, out, len(before)+10))
	for j := range 4 {
		if last[j] <= at[j] {
			t.Fatalf("thread %d counter stuck at %d", j, last[j])
		}
	}
}
