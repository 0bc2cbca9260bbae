package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/rexec"
)

// upgradeExec names the frame protocol of POST /v1/run (agent.UpgradeExec).
const upgradeExec = "ssi-exec"

// Run opens a run stream: POST /v1/run upgraded to frames (package rexec).
// The caller sends Start first. Close the returned connection when done.
func (c *Client) Run(ctx context.Context) (*rexec.StreamConn, net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.socket)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, nil, fmt.Errorf("%w on %s (start it with 'ssi agent', or point --socket at it)", ErrNoAgent, c.socket)
		}
		return nil, nil, fmt.Errorf("agent on %s: %w", c.socket, err)
	}
	req := "POST /v1/run HTTP/1.1\r\nHost: ssi\r\nConnection: Upgrade\r\nUpgrade: " + upgradeExec + "\r\nContent-Length: 0\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("agent on %s: %w", c.socket, err)
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("agent on %s: %w", c.socket, err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		defer conn.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e api.Error
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, nil, &Error{Status: resp.StatusCode, Msg: e.Error}
		}
		return nil, nil, &Error{Status: resp.StatusCode, Msg: resp.Status}
	}
	return rexec.NewStreamConn(conn, br), conn, nil
}

// Place returns n node numbers spread by load (for run --np).
func (c *Client) Place(ctx context.Context, n int) ([]int, error) {
	var out []int
	return out, c.do(ctx, http.MethodGet, "/v1/place?n="+strconv.Itoa(n), &out)
}
