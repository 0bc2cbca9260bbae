package agent

import (
	"context"
	"io"
	"testing"

	"github.com/ssi-cluster/ssi/internal/relink"
	"github.com/ssi-cluster/ssi/internal/rexec"
)

// TestHeldInput: input passes while not held, is kept while the process
// moves, and is sent first, in order, to where it goes on.
func TestHeldInput(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	home1, node1 := newPipeLink(ctx)
	home2, node2 := newPipeLink(ctx)
	in := relink.NewInput(home1)
	frame := func(s string) rexec.Frame { return rexec.Frame{Type: rexec.TStdin, Data: []byte(s)} }
	buf := []byte("a")
	in.Pass(rexec.Frame{Type: rexec.TStdin, Data: buf})
	in.Hold() // Hold goes to the old node after what came before
	buf[0] = 'X'
	in.Pass(frame("b")) // held, copied
	in.Pass(rexec.Frame{Type: rexec.TStdinEOF})
	in.Moved(home2)
	in.Pass(frame("c"))
	for _, tt := range []struct {
		end  *pipeEnd
		want []rexec.Frame
	}{
		{node1, []rexec.Frame{frame("a"), {Type: rexec.THold}}},
		{node2, []rexec.Frame{frame("b"), {Type: rexec.TStdinEOF}, frame("c")}},
	} {
		for i, w := range tt.want {
			f, err := tt.end.Recv()
			if err != nil || f.Type != w.Type || string(f.Data) != string(w.Data) {
				t.Fatalf("frame %d: %s %q (%v), want %s %q", i, f.Type, f.Data, err, w.Type, w.Data)
			}
		}
	}
	home1.CloseSend()
	if _, err := node1.Recv(); err != io.EOF {
		t.Errorf("after CloseSend: %v, want EOF", err)
	}
	cancel()
	if _, err := node2.Recv(); err == nil {
		t.Error("a pipe outlived its context")
	}
}

// TestHeldInputResume: input sent on a stream that broke is kept until
// acknowledged; a re-attached stream gets what its node had not received,
// in order, then what comes after.
func TestHeldInputResume(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	home1, node1 := newPipeLink(ctx)
	home2, node2 := newPipeLink(ctx)
	in := relink.NewInput(home1)
	frame := func(s string) rexec.Frame { return rexec.Frame{Type: rexec.TStdin, Data: []byte(s)} }
	for _, s := range []string{"a", "b", "c"} {
		in.Pass(frame(s))
	}
	in.Ack(1) // the node acknowledged a
	in.Suspend()
	in.Pass(frame("d")) // kept while suspected
	// The node had received a and b when the stream broke.
	if err := in.Resume(home2, 2, false); err != nil {
		t.Fatal(err)
	}
	in.Pass(frame("e"))
	for _, tt := range []struct {
		end  *pipeEnd
		want string
	}{{node1, "abc"}, {node2, "cde"}} {
		got := ""
		for range tt.want {
			f, err := tt.end.Recv()
			if err != nil {
				t.Fatal(err)
			}
			got += string(f.Data)
		}
		if got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
	// A node that claims input never sent cannot be brought up to date.
	if err := in.Resume(home2, 9, false); err == nil {
		t.Error("resume beyond what was sent succeeded")
	}
}

// TestHeldInputResumeEnded: a stream re-attached to a session that has
// ended (its process moved on while the stream was broken) gets no
// input: what its node had not received is held for the process's next
// session, whose base counts only what the ended one had.
func TestHeldInputResumeEnded(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	home1, node1 := newPipeLink(ctx)
	home2, node2 := newPipeLink(ctx)
	home3, node3 := newPipeLink(ctx)
	in := relink.NewInput(home1)
	frame := func(s string) rexec.Frame { return rexec.Frame{Type: rexec.TStdin, Data: []byte(s)} }
	for _, s := range []string{"a", "b", "c"} {
		in.Pass(frame(s))
	}
	in.Suspend()
	in.Pass(frame("d"))
	// The old node had a and b when the process moved on.
	if err := in.Resume(home2, 2, true); err != nil {
		t.Fatal(err)
	}
	in.Pass(frame("e"))
	in.Moved(home3)
	want := map[*pipeEnd]string{node1: "abc", node3: "cde"}
	for end, w := range want {
		got := ""
		for range w {
			f, err := end.Recv()
			if err != nil {
				t.Fatal(err)
			}
			got += string(f.Data)
		}
		if got != w {
			t.Errorf("got %q, want %q", got, w)
		}
	}
	if frames, base := in.Has(); frames != 2 || base != 2 {
		t.Errorf("has %d frames, base %d; want 2 and 2", frames, base)
	}
	home2.CloseSend()
	if f, err := node2.Recv(); err != io.EOF {
		t.Errorf("the ended session got %s %q (%v), want nothing", f.Type, f.Data, err)
	}
}
