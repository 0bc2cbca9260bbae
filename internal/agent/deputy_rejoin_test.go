package agent

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/ssi-cluster/ssi/internal/relink"
	"github.com/ssi-cluster/ssi/internal/rexec"
)

// TestResumeInput: a rejoining deputy is told from which of its frames to
// send its input again, mapped with the session it last heard of; one
// whose session is not the node's (a move it was not told of) is told
// why, and its process's input ends; one of a version before is told
// nothing.
func TestResumeInput(t *testing.T) {
	a := &Agent{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, tc := range []struct {
		name     string
		spec     rexec.Spec
		st       rexec.Started
		wantFrom int64 // -2: no InputFrom
		wantErr  bool
		wantEOF  bool
	}{
		{"same session", rexec.Spec{Exact: true, InputBase: 40, InputNode: 2, InputPid: 77}, rexec.Started{Pid: 77, Received: 5}, 45, false, false},
		{"first session", rexec.Spec{Exact: true, InputNode: 2, InputPid: 77}, rexec.Started{Pid: 77}, 0, false, false},
		{"moved, not told", rexec.Spec{Exact: true, InputBase: 40, InputNode: 1, InputPid: 77}, rexec.Started{Pid: 91, Received: 3}, -1, true, true},
		{"another pid", rexec.Spec{Exact: true, InputBase: 40, InputNode: 2, InputPid: 76}, rexec.Started{Pid: 77, Received: 3}, -1, true, true},
		{"a deputy of a version before", rexec.Spec{}, rexec.Started{Pid: 77, Received: 3}, -2, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			home, deputy := newPipeLink(ctx)
			toNode, node := newPipeLink(ctx)
			in := relink.NewInput(toNode)
			spec := tc.spec
			spec.Attach = 1<<22 | 5
			a.resumeInput(home, in, &spec, 2, tc.st)
			home.CloseSend()
			var sawErr bool
			from := int64(-2)
			for {
				f, err := deputy.Recv()
				if err != nil {
					break
				}
				switch f.Type {
				case rexec.TError:
					sawErr = strings.Contains(string(f.Data), "cannot be completed")
				case rexec.TInputFrom:
					from = rexec.Ack(f)
				}
			}
			if from != tc.wantFrom || sawErr != tc.wantErr {
				t.Errorf("InputFrom %d, error %v; want %d, %v", from, sawErr, tc.wantFrom, tc.wantErr)
			}
			if tc.wantEOF {
				if f, err := node.Recv(); err != nil || f.Type != rexec.TStdinEOF {
					t.Errorf("the node got %s (%v), want stdin-eof", f.Type, err)
				}
			}
			if frames, _ := in.Has(); tc.wantFrom >= 0 && frames != tc.wantFrom {
				t.Errorf("the node has %d of the deputy's frames, want %d", frames, tc.wantFrom)
			}
		})
	}
}
