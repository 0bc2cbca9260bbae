// Package client is the typed client of the agent's local API (package api
// lists the endpoints), over the agent's Unix socket. The CLI, the test
// harness and the benchmarks use it.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/ssi-cluster/ssi/internal/api"
)

// Client talks to one agent.
type Client struct {
	socket string
	hc     *http.Client
}

// New returns a client for the agent listening on socket.
func New(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		// A request that says Expect: 100-continue (restore) waits this
		// long for the agent's go-ahead before it sends its body anyway.
		ExpectContinueTimeout: 10 * time.Second,
		MaxIdleConns:          4,
	}
	return &Client{socket: socket, hc: &http.Client{Transport: tr}}
}

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// ErrNoAgent is returned when nothing listens on the socket.
var ErrNoAgent = errors.New("no agent is running")

func (c *Client) do(ctx context.Context, method, path string, out any) error {
	return c.doBody(ctx, method, path, nil, out)
}

func (c *Client) doBody(ctx context.Context, method, path string, in, out any) error {
	var reqBody io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		reqBody = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://ssi"+path, reqBody)
	if err != nil {
		return err
	}
	return c.send(req, path, out)
}

// send makes the request req (to path) and decodes the answer into out.
func (c *Client) send(req *http.Request, path string, out any) error {
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("%w on %s (start it with 'ssi agent', or point --socket at it)", ErrNoAgent, c.socket)
		}
		if errors.Is(err, os.ErrPermission) {
			return fmt.Errorf("cannot connect to the agent on %s: permission denied", c.socket)
		}
		return fmt.Errorf("agent on %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e api.Error
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return &Error{Status: resp.StatusCode, Msg: e.Error}
		}
		return &Error{Status: resp.StatusCode, Msg: resp.Status}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("agent's answer to %s: %w", path, err)
	}
	return nil
}

// Error is an error answered by the agent.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Cluster returns the cluster's name and summary.
func (c *Client) Cluster(ctx context.Context) (api.Cluster, error) {
	var out api.Cluster
	return out, c.do(ctx, http.MethodGet, "/v1/cluster", &out)
}

// Nodes returns every registered node with its load.
func (c *Client) Nodes(ctx context.Context) ([]api.Node, error) {
	var out []api.Node
	return out, c.do(ctx, http.MethodGet, "/v1/nodes", &out)
}

// Node returns node n (0 = this node).
func (c *Client) Node(ctx context.Context, n int) (api.Node, error) {
	var out api.Node
	p := "/v1/nodes/" + strconv.Itoa(n)
	if n == 0 {
		p = "/v1/nodes/self"
	}
	return out, c.do(ctx, http.MethodGet, p, &out)
}

// Self describes the agent.
func (c *Client) Self(ctx context.Context) (api.Self, error) {
	var out api.Self
	return out, c.do(ctx, http.MethodGet, "/v1/self", &out)
}

// Transitions returns committed transitions after epoch; with wait it
// blocks (up to 30 s) until there is one.
func (c *Client) Transitions(ctx context.Context, after uint64, wait bool) ([]api.Transition, error) {
	q := url.Values{"after": {strconv.FormatUint(after, 10)}}
	if wait {
		q.Set("wait", "1")
	}
	var out []api.Transition
	return out, c.do(ctx, http.MethodGet, "/v1/transitions?"+q.Encode(), &out)
}

// BalanceLog returns the node's last automatic moves.
func (c *Client) BalanceLog(ctx context.Context) (api.BalanceLog, error) {
	var out api.BalanceLog
	return out, c.do(ctx, http.MethodGet, "/v1/balance/log", &out)
}

// Leave makes this node leave the cluster (root only); the agent stops.
func (c *Client) Leave(ctx context.Context) (api.Transition, error) {
	var out api.Transition
	return out, c.do(ctx, http.MethodPost, "/v1/leave", &out)
}

// WaitReady polls until the agent answers or ctx ends.
func (c *Client) WaitReady(ctx context.Context) error {
	for {
		if _, err := c.Self(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Procs lists the processes of every node (node 0) or of one, optionally of
// one user (name or uid).
func (c *Client) Procs(ctx context.Context, node int, user string) (api.ProcsReply, error) {
	q := url.Values{}
	if node != 0 {
		q.Set("node", strconv.Itoa(node))
	}
	if user != "" {
		q.Set("user", user)
	}
	var out api.ProcsReply
	return out, c.do(ctx, http.MethodGet, "/v1/procs?"+q.Encode(), &out)
}

// Where returns the process with a cluster pid, with the node it runs on.
func (c *Client) Where(ctx context.Context, cpid int64) (api.Proc, error) {
	var out api.Proc
	return out, c.do(ctx, http.MethodGet, "/v1/procs/"+strconv.FormatInt(cpid, 10), &out)
}

// Signal signals a process (or group) anywhere in the cluster, as the caller.
func (c *Client) Signal(ctx context.Context, r api.SignalRequest) error {
	return c.doBody(ctx, http.MethodPost, "/v1/signal", r, nil)
}
