package agent

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/ssi-cluster/ssi/internal/rexec"
	"github.com/ssi-cluster/ssi/internal/transport"
)

// msgStream is a gRPC stream, client's or server's, as the frame and
// message connections over it use it.
type msgStream interface {
	SendMsg(any) error
	RecvMsg(any) error
}

// openExec starts spec on node num (or, with spec.Attach, re-attaches to
// the process that moved there) and returns the link to it: a gRPC
// stream to another node, or a pipe to this agent when it runs here.
func (a *Agent) openExec(ctx context.Context, num int, spec *rexec.Spec) (rexec.Conn, error) {
	if num == a.Identity().Number {
		home, node := newPipeLink(ctx)
		go func() {
			defer node.finish()
			a.serveExec(ctx, spec, node)
		}()
		return home, nil
	}
	n, err := a.upNode(num)
	if err != nil {
		return nil, err
	}
	cl, err := a.pool.Client(n.RPCAddr(), transport.Bulk)
	if err != nil {
		return nil, fmt.Errorf("cannot reach node %d: %v", num, err)
	}
	stream, err := cl.Exec(ctx)
	if err == nil {
		start := rexec.JSON(rexec.TStart, spec)
		err = stream.SendMsg(&start)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot reach node %d: %v", num, err)
	}
	return &grpcConn{s: stream}, nil
}

// pipeEnd is one end of an in-process frame pipe: the home's or the
// executing side's.
type pipeEnd struct {
	ctx  context.Context
	in   <-chan rexec.Frame
	out  chan<- rexec.Frame
	once sync.Once
	mu   sync.Mutex
	shut bool
}

// newPipeLink returns both ends of a frame pipe that ends with ctx.
func newPipeLink(ctx context.Context) (home, node *pipeEnd) {
	toNode, toHome := make(chan rexec.Frame, 64), make(chan rexec.Frame, 64)
	return &pipeEnd{ctx: ctx, in: toHome, out: toNode}, &pipeEnd{ctx: ctx, in: toNode, out: toHome}
}

func (p *pipeEnd) Send(f rexec.Frame) error {
	f.Data = append([]byte(nil), f.Data...)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shut {
		return io.ErrClosedPipe
	}
	select {
	case p.out <- f:
		return nil
	case <-p.ctx.Done():
		return p.ctx.Err()
	}
}

func (p *pipeEnd) Recv() (rexec.Frame, error) {
	select {
	case f, ok := <-p.in:
		if !ok {
			return rexec.Frame{}, io.EOF
		}
		return f, nil
	case <-p.ctx.Done():
		return rexec.Frame{}, p.ctx.Err()
	}
}

// CloseSend ends what this end sends (the other end's Recv gets EOF).
func (p *pipeEnd) CloseSend() error {
	p.once.Do(func() {
		p.mu.Lock()
		p.shut = true
		close(p.out)
		p.mu.Unlock()
	})
	return nil
}

// finish is the executing side's end of the session.
func (p *pipeEnd) finish() { p.CloseSend() }
