package agent

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ssi-cluster/ssi/internal/checkpoint"
	"github.com/ssi-cluster/ssi/internal/rexec"
)

// TestPrivilegesAllowed: a user's image may not make the restore, which
// runs as root until it drops to the image's user, do what that user
// could not: lower its OOM score adjustment, take another login uid, lock
// more memory than its RLIMIT_MEMLOCK, use an alarm clock, or give it a
// deleted file of another user.
func TestPrivilegesAllowed(t *testing.T) {
	b, err := os.ReadFile("/proc/self/loginuid")
	if err != nil {
		t.Skip("no audit login uid here")
	}
	mine, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	c := Caller{UID: 1000, GID: 1000, PID: os.Getpid()}
	caller := rexec.Caller{Groups: []int{1000, 27}}
	memlock := []checkpoint.Rlimit{{Resource: unix.RLIMIT_MEMLOCK, Cur: 8192, Max: 8192}}
	tests := []struct {
		name string
		img  checkpoint.Image
		want string // "" allowed
	}{
		{"no attributes", checkpoint.Image{}, ""},
		{"defaults", checkpoint.Image{Attrs: &checkpoint.ProcAttrs{LoginUID: checkpoint.NoLoginUID, OOMScoreAdj: 200}}, ""},
		{"its own login uid", checkpoint.Image{Attrs: &checkpoint.ProcAttrs{LoginUID: uint32(mine)}}, ""},
		{"another login uid", checkpoint.Image{Attrs: &checkpoint.ProcAttrs{LoginUID: uint32(mine) + 1}}, "login uid"},
		{"lower OOM score", checkpoint.Image{Attrs: &checkpoint.ProcAttrs{LoginUID: checkpoint.NoLoginUID, OOMScoreAdj: -1}}, "oom_score_adj"},
		{"locked within the limit", checkpoint.Image{Rlimits: memlock, Attrs: &checkpoint.ProcAttrs{LoginUID: checkpoint.NoLoginUID,
			Advice: []checkpoint.MapAdvice{{Start: 0x1000, End: 0x3000, Flags: checkpoint.AdvLocked}}}}, ""},
		{"locked above the limit", checkpoint.Image{Rlimits: memlock, Attrs: &checkpoint.ProcAttrs{LoginUID: checkpoint.NoLoginUID,
			Advice: []checkpoint.MapAdvice{{Start: 0x1000, End: 0x4000, Flags: checkpoint.AdvLockOnFault}}}}, "RLIMIT_MEMLOCK"},
		{"alarm timer", checkpoint.Image{Attrs: &checkpoint.ProcAttrs{LoginUID: checkpoint.NoLoginUID,
			Timers: []checkpoint.PosixTimer{{ID: 0, Clock: unix.CLOCK_BOOTTIME_ALARM}}}}, "alarm clock"},
		{"alarm timerfd", checkpoint.Image{Objects: []checkpoint.KObject{{Fd: 3, Kind: checkpoint.ObjTimerfd, Clock: unix.CLOCK_REALTIME_ALARM}}}, "alarm clock"},
		{"its deleted file", checkpoint.Image{Objects: []checkpoint.KObject{{Fd: 3, Kind: checkpoint.ObjDeleted, Path: "/tmp/x", Uid: 1000, Gid: 27}}}, ""},
		{"root's deleted file", checkpoint.Image{Objects: []checkpoint.KObject{{Fd: 3, Kind: checkpoint.ObjDeleted, Path: "/tmp/x", Uid: 0, Gid: 1000}}}, "not yours"},
		{"another group's deleted file", checkpoint.Image{Objects: []checkpoint.KObject{{Fd: 3, Kind: checkpoint.ObjDeleted, Path: "/tmp/x", Uid: 1000, Gid: 0}}}, "not yours"},
	}
	for _, tt := range tests {
		err := privilegesAllowed(&tt.img, c, caller)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: %v, want a refusal with %q", tt.name, err, tt.want)
		}
	}
}
