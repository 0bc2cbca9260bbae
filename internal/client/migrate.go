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
	"net/url"
	"os"
	"strconv"
	"syscall"

	"github.com/ssi-cluster/ssi/internal/api"
	"github.com/ssi-cluster/ssi/internal/migrate"
)

// Migrate moves a process to node to ("N", "home" or "fast") and says how
// it went.
func (c *Client) Migrate(ctx context.Context, cpid int64, to string) (api.Migration, error) {
	var out api.Migration
	return out, c.doBody(ctx, http.MethodPost, "/v1/migrate", api.MigrateRequest{CPID: cpid, To: to}, &out)
}

// Checkpoint writes the image of process cpid to w. save is called once
// the whole image is in w and must make it safe (close, sync); only when
// it succeeds is the process killed (with kill). It returns the image's
// size.
func (c *Client) Checkpoint(ctx context.Context, cpid int64, kill bool, w io.Writer, save func() error) (int64, error) {
	q := url.Values{"cpid": {strconv.FormatInt(cpid, 10)}}
	if kill {
		q.Set("kill", "1")
	}
	conn, br, err := c.upgrade(ctx, "/v1/checkpoint?"+q.Encode(), api.UpgradeCheckpoint)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	mc := migrate.NewStreamConn(conn, br)
	// The image's messages (data and runs of zeros), up to the first
	// other message: failed, or end.
	ir := migrate.NewImageReader(mc)
	ew := &errWriter{w: w}
	n, err := io.Copy(ew, ir)
	if ew.err != nil {
		mc.Send(migrate.Text(migrate.KAbort, "%v", ew.err))
		return n, ew.err
	}
	if err != nil {
		return n, fmt.Errorf("the agent's stream ended before the image did (%d bytes): %v", n, err)
	}
	m, err := ir.Next()
	switch {
	case err != nil:
		return n, fmt.Errorf("the agent's stream ended before the image did (%d bytes): %v", n, err)
	case m.Kind == migrate.KFailed:
		return n, &Error{Status: http.StatusConflict, Msg: string(m.Data)}
	case m.Kind != migrate.KEnd:
		return n, fmt.Errorf("unexpected %s message from the agent", m.Kind)
	}
	var e migrate.End
	if err := m.Parse(&e); err != nil || e.ImageBytes != n {
		mc.Send(migrate.Text(migrate.KAbort, "cut"))
		return n, fmt.Errorf("the image was cut: %d bytes of %d", n, e.ImageBytes)
	}
	if err := save(); err != nil {
		mc.Send(migrate.Text(migrate.KAbort, "%v", err))
		return n, err
	}
	if !kill {
		return n, nil
	}
	if err := mc.Send(migrate.Msg{Kind: migrate.KCommit}); err != nil {
		return n, err
	}
	if m, err := mc.Recv(); err != nil || m.Kind != migrate.KDone {
		return n, errors.New("the image is saved, but the agent did not confirm that the process was killed")
	}
	return n, nil
}

// errWriter is w that keeps its first error, to tell it from the
// reader's in io.Copy.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(b []byte) (int, error) {
	n, err := e.w.Write(b)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}

// Restore restores the image read from r on the agent's node; the
// descriptors that were a deputy's stdio are /dev/null, or out for
// those it wrote.
func (c *Client) Restore(ctx context.Context, r io.Reader, out string) (api.Restore, error) {
	var res api.Restore
	q := url.Values{}
	if out != "" {
		q.Set("out", out)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://ssi/v1/restore?"+q.Encode(), r)
	if err != nil {
		return res, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	// The size first, and the image only once the agent has said it
	// takes it (100 Continue): a refusal (who you are, the size) comes
	// before a byte of the image is sent.
	if f, ok := r.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			if pos, err := f.Seek(0, io.SeekCurrent); err == nil && pos <= st.Size() {
				req.ContentLength = st.Size() - pos
				if req.ContentLength == 0 {
					req.Body = http.NoBody
				}
			}
		}
	}
	req.Header.Set("Expect", "100-continue")
	return res, c.send(req, "/v1/restore", &res)
}

// upgrade opens a connection upgraded to proto by a POST to path.
func (c *Client) upgrade(ctx context.Context, path, proto string) (net.Conn, *bufio.Reader, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.socket)
	if err != nil {
		return nil, nil, c.dialError(err)
	}
	if uc, ok := conn.(*net.UnixConn); ok {
		uc.SetWriteBuffer(4 << 20) // a stream's data waits in the socket, not in the sender
	}
	req := "POST " + path + " HTTP/1.1\r\nHost: ssi\r\nConnection: Upgrade\r\nUpgrade: " + proto + "\r\nContent-Length: 0\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("agent on %s: %w", c.socket, err)
	}
	br := bufio.NewReaderSize(conn, 1<<20)
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
	return conn, br, nil
}

// dialError says why the agent's socket could not be reached.
func (c *Client) dialError(err error) error {
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%w on %s (start it with 'ssi agent', or point --socket at it)", ErrNoAgent, c.socket)
	}
	return fmt.Errorf("agent on %s: %w", c.socket, err)
}
