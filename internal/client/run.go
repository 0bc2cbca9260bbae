package client

import (
	"context"
	"net"
	"net/http"
	"strconv"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/rexec"
)

// Run opens a run stream: POST /v1/run upgraded to frames (package rexec).
// The caller sends Start first. Close the returned connection when done.
func (c *Client) Run(ctx context.Context) (*rexec.StreamConn, net.Conn, error) {
	conn, br, err := c.upgrade(ctx, "/v1/run", api.UpgradeExec)
	if err != nil {
		return nil, nil, err
	}
	return rexec.NewStreamConn(conn, br), conn, nil
}

// Place returns n node numbers spread by load (for run --np).
func (c *Client) Place(ctx context.Context, n int) ([]int, error) {
	var out []int
	return out, c.do(ctx, http.MethodGet, "/v1/place?n="+strconv.Itoa(n), &out)
}
