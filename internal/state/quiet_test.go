package state

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// countingTransport counts the AppendEntries that reach the network.
type countingTransport struct {
	raft.Transport // nil: only AppendEntries and Consumer are called
	n              atomic.Int32
	in             chan raft.RPC
}

func (c *countingTransport) Consumer() <-chan raft.RPC { return c.in }

func (c *countingTransport) AppendEntries(raft.ServerID, raft.ServerAddress, *raft.AppendEntriesRequest, *raft.AppendEntriesResponse) error {
	c.n.Add(1)
	return nil
}

var heartbeat = &raft.AppendEntriesRequest{Term: 3, RPCHeader: raft.RPCHeader{Addr: []byte("leader")}}

func TestIsHeartbeat(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  raft.AppendEntriesRequest
		want bool
	}{
		{"heartbeat", raft.AppendEntriesRequest{Term: 2}, true},
		{"no term", raft.AppendEntriesRequest{}, false},
		{"carries the commit index", raft.AppendEntriesRequest{Term: 2, LeaderCommitIndex: 9}, false},
		{"names a previous entry", raft.AppendEntriesRequest{Term: 2, PrevLogEntry: 4, PrevLogTerm: 2}, false},
		{"carries entries", raft.AppendEntriesRequest{Term: 2, Entries: []*raft.Log{{Index: 1}}}, false},
	} {
		if got := isHeartbeat(&tc.req); got != tc.want {
			t.Errorf("%s: isHeartbeat = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestQuietTransportThinsNonVoterHeartbeats(t *testing.T) {
	inner := &countingTransport{}
	q := newQuietTransport(inner, time.Hour)
	q.setSuffrage(func(id raft.ServerID) bool { return id == "nv" })
	var resp raft.AppendEntriesResponse
	// Voters, peers not in the configuration and anything but a heartbeat
	// are never held; a non-voter's first heartbeat goes out.
	calls := make(chan struct{})
	go func() {
		for range 5 {
			q.AppendEntries("v", "b", heartbeat, &resp)
			q.AppendEntries("unknown", "c", heartbeat, &resp)
			q.AppendEntries("nv", "a", &raft.AppendEntriesRequest{Term: 3, LeaderCommitIndex: 7}, &resp)
		}
		q.AppendEntries("nv", "a", heartbeat, &resp)
		close(calls)
	}()
	select {
	case <-calls:
	case <-time.After(10 * time.Second):
		t.Fatal("calls that must not wait are waiting")
	}
	if n := inner.n.Load(); n != 16 {
		t.Fatalf("%d calls reached the network, want 16", n)
	}
	// The next heartbeat to the non-voter waits for its period (an hour).
	held := make(chan struct{})
	go func() { q.AppendEntries("nv", "a", heartbeat, &resp); close(held) }()
	select {
	case <-held:
		t.Fatal("a second heartbeat to a non-voter went out at once")
	case <-time.After(50 * time.Millisecond):
	}
	q.Close()
	<-held
}

func TestQuietTransportKickAndClose(t *testing.T) {
	inner := &countingTransport{}
	q := newQuietTransport(inner, time.Hour)
	var mu sync.Mutex
	voter := false
	q.setSuffrage(func(raft.ServerID) bool { mu.Lock(); defer mu.Unlock(); return !voter })
	var resp raft.AppendEntriesResponse
	q.AppendEntries("p", "a", heartbeat, &resp) // the first passes; the next waits an hour
	done := make(chan error, 1)
	go func() { done <- q.AppendEntries("p", "a", heartbeat, &resp) }()
	select {
	case err := <-done:
		t.Fatalf("a second heartbeat to a non-voter went out at once (%v)", err)
	case <-time.After(20 * time.Millisecond):
	}
	// Promoted: a kick releases the waiting heartbeat.
	mu.Lock()
	voter = true
	mu.Unlock()
	q.Kick()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Closing releases a waiting heartbeat with the transport's shutdown error.
	mu.Lock()
	voter = false
	mu.Unlock()
	go func() { done <- q.AppendEntries("p", "a", heartbeat, &resp) }()
	time.Sleep(10 * time.Millisecond)
	q.Close()
	if err := <-done; !errors.Is(err, raft.ErrTransportShutdown) {
		t.Fatalf("after Close: %v, want %v", err, raft.ErrTransportShutdown)
	}
}

func TestQuietTransportElect(t *testing.T) {
	inner := &countingTransport{in: make(chan raft.RPC)}
	q := newQuietTransport(inner, time.Second)
	defer q.Close()
	// The network's RPCs reach raft through the wrapper.
	go func() { inner.in <- raft.RPC{Command: &raft.RequestVoteRequest{Term: 7}} }()
	if rpc := <-q.Consumer(); rpc.Command.(*raft.RequestVoteRequest).Term != 7 {
		t.Fatalf("forwarded %+v", rpc.Command)
	}
	// elect hands raft a TimeoutNow that raft's header check accepts, and
	// returns raft's answer.
	got := make(chan error, 1)
	go func() { got <- q.elect(10 * time.Second) }()
	rpc := <-q.Consumer()
	req, ok := rpc.Command.(*raft.TimeoutNowRequest)
	if !ok || req.ProtocolVersion != raft.ProtocolVersionMax {
		t.Fatalf("elect sent %#v", rpc.Command)
	}
	rpc.Respond(&raft.TimeoutNowResponse{}, nil)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}
