package transport

import (
	"bufio"
	"context"
	"net"
	"sync"

	"google.golang.org/grpc/credentials"
)

// Corking: crypto/tls writes every record (at most 16 KiB) with its own
// system call, so a large message costs a write, and on a veth or
// loopback path the receiver's TCP processing too, per 16 KiB. A corked
// connection gathers the records of one large write and hands them to
// the socket in writes of up to corkSize bytes; it reads through a
// buffer of that size too (crypto/tls reads about a record at a time).
// Only framing changes: the records, and their encryption, are
// crypto/tls's own.

// corkSize bounds one gathered write.
const corkSize = 256 << 10

// recordSize is the largest TLS record payload: a write no larger is
// one record, with nothing to gather.
const recordSize = 16 << 10

// corkedCreds are TLS credentials whose connections are corked.
type corkedCreds struct {
	credentials.TransportCredentials
}

func corked(c credentials.TransportCredentials) credentials.TransportCredentials {
	return corkedCreds{c}
}

func (c corkedCreds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	k := &cork{Conn: raw}
	conn, info, err := c.TransportCredentials.ClientHandshake(ctx, authority, k)
	if err != nil {
		return nil, nil, err
	}
	return &corkedConn{Conn: conn, k: k}, info, nil
}

func (c corkedCreds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	k := &cork{Conn: raw}
	conn, info, err := c.TransportCredentials.ServerHandshake(k)
	if err != nil {
		return nil, nil, err
	}
	return &corkedConn{Conn: conn, k: k}, info, nil
}

func (c corkedCreds) Clone() credentials.TransportCredentials {
	return corkedCreds{c.TransportCredentials.Clone()}
}

// corkedConn is a TLS connection over a cork: a large write leaves in
// gathered writes, all of it before Write returns.
type corkedConn struct {
	net.Conn // the TLS connection
	k        *cork
	mu       sync.Mutex // one corked write at a time
}

func (c *corkedConn) Write(p []byte) (int, error) {
	if len(p) <= recordSize {
		return c.Conn.Write(p)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.k.set(true)
	n, err := c.Conn.Write(p)
	if ferr := c.k.set(false); err == nil {
		err = ferr
	}
	return n, err
}

// cork is the raw connection under TLS. While corked it gathers what is
// written, up to corkSize bytes a write; uncorking writes what is left.
// Uncorked (the handshake, records written by reads) it passes writes
// through: nothing ever waits in it for a later write.
type cork struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    []byte
	r      *bufio.Reader
}

// Read reads through a buffer (made on first use).
// NetConn returns the connection under the cork (pki finds the tracked
// connection of a handshake through it).
func (k *cork) NetConn() net.Conn { return k.Conn }

func (k *cork) Read(p []byte) (int, error) {
	if k.r == nil {
		k.r = bufio.NewReaderSize(k.Conn, corkSize)
	}
	return k.r.Read(p)
}

func (k *cork) Write(p []byte) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.corked {
		return k.Conn.Write(p)
	}
	if len(k.buf)+len(p) > corkSize {
		if err := k.flush(); err != nil {
			return 0, err
		}
	}
	if len(p) > corkSize {
		return k.Conn.Write(p)
	}
	if k.buf == nil {
		k.buf = make([]byte, 0, corkSize)
	}
	k.buf = append(k.buf, p...)
	return len(p), nil
}

// set corks or uncorks k; uncorking writes what was gathered.
func (k *cork) set(corked bool) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.corked = corked
	if !corked {
		return k.flush()
	}
	return nil
}

func (k *cork) flush() error {
	if len(k.buf) == 0 {
		return nil
	}
	_, err := k.Conn.Write(k.buf)
	k.buf = k.buf[:0]
	return err
}
