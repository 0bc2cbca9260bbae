package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/ssi-cluster/ssi/internal/api"
)

// CreateToken makes a join token (root, on a voter).
func (c *Client) CreateToken(ctx context.Context, req api.TokenCreate) (api.TokenCreated, error) {
	var out api.TokenCreated
	return out, c.doBody(ctx, http.MethodPost, "/v1/tokens", req, &out)
}

// Tokens lists the join tokens (root).
func (c *Client) Tokens(ctx context.Context) ([]api.Token, error) {
	var out []api.Token
	return out, c.do(ctx, http.MethodGet, "/v1/tokens", &out)
}

// RevokeToken revokes the join token with this ID (root, on a voter).
func (c *Client) RevokeToken(ctx context.Context, id string) (api.Token, error) {
	var out api.Token
	return out, c.do(ctx, http.MethodDelete, "/v1/tokens/"+url.PathEscape(id), &out)
}

// RemoveNode removes node n from the cluster for good (root, on a voter).
func (c *Client) RemoveNode(ctx context.Context, n int) (api.Transition, error) {
	var out api.Transition
	return out, c.do(ctx, http.MethodPost, fmt.Sprintf("/v1/nodes/%d/remove", n), &out)
}

// Removed lists the nodes removed for good.
func (c *Client) Removed(ctx context.Context) ([]api.Removed, error) {
	var out []api.Removed
	return out, c.do(ctx, http.MethodGet, "/v1/removed", &out)
}
