package checkpoint

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"testing"
)

func TestParseTimers(t *testing.T) {
	text := "ID: 2\nsignal: 35/0000000000001234\nnotify: signal/pid.32494\nClockID: 7\n" +
		"ID: 1\nsignal: 36/0000000000000000\nnotify: signal/tid.32495\nClockID: 1\n" +
		"ID: 3\nsignal: 14/0000000000000000\nnotify: none/pid.32494\nClockID: 0\n"
	got, err := parseTimers(text)
	if err != nil {
		t.Fatal(err)
	}
	want := []PosixTimer{{ID: 2, Clock: 7, Signo: 35, Value: 0x1234}, {ID: 1, Clock: 1, Signo: 36, Notify: sigevThreadID, Tid: 32495},
		{ID: 3, Clock: 0, Signo: 14, Notify: sigevNone}}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("timer %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"signal: 35/0\n", "ID: x\n", "ID: 1\nnotify: bogus/pid.1\n", "ID: 1\nsignal: 35\n", "ID: 1\nnotify: signal/pgid.3\n"} {
		if _, err := parseTimers(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestRestorePosixTimers migrates, twice, a program with three POSIX
// timers (a periodic signal with a value, a 1000 s timer with no
// notification, a periodic signal to its second thread) and a freed id:
// its ticks go on, and it finds every timer as it left it.
func TestRestorePosixTimers(t *testing.T) {
	needTracing(t)
	if !timerIDs() {
		t.Skip("this kernel cannot give a timer its id back (PR_TIMER_CREATE_RESTORE_IDS, Linux 6.14)")
	}
	stub, bin := buildC(t, "stub"), buildC(t, "ptimers", "-pthread")
	moveAndCheck(t, stub, bin, "plain", "a timer was not as it left it", 2, outOnly, func(round int, img *Image, pid int) {
		if img.Attrs == nil || len(img.Attrs.Timers) != 3 {
			t.Fatalf("round %d: timers in the image: %+v", round, img.Attrs)
		}
		raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/timers")
		if err != nil {
			t.Fatal(err)
		}
		if ids := timerID.FindAllString(string(raw), -1); len(ids) != 3 || slices.Contains(ids, "ID: 0") {
			t.Errorf("round %d: timers after the restore:\n%s", round, raw)
		}
	})
}

var timerID = regexp.MustCompile(`(?m)^ID: \d+`)
