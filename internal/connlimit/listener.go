package connlimit

import (
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Listener is a net.Listener whose connections are counted per uid in a
// Counter; a connection over the cap is answered Refuse's bytes (if any)
// and closed at once, and never returned by Accept.
type Listener struct {
	net.Listener
	Counter *Counter
	// Creds reads the peer's credentials (uid, ok). Nil: PeerCred, which
	// knows Unix sockets; a connection without them is Anonymous.
	Creds func(net.Conn) (unix.Ucred, bool)
	// Refuse is the answer written to a refused connection before it is
	// closed (say, an HTTP error), given why; nil: closed without one.
	Refuse func(why string) []byte
	// Log is told of refusals, at most once per Throttle interval per uid,
	// with the number not told since. Nil: not told.
	Log      func(uid int, why string, missed int)
	Throttle *Throttle
}

// Accept returns the next connection within the caps. Errors are the
// underlying listener's.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		creds := l.Creds
		if creds == nil {
			creds = PeerCred
		}
		cred, ok := creds(c)
		uid := Anonymous
		if ok {
			uid = int(cred.Uid)
		}
		if why := l.Counter.Acquire(uid); why != "" {
			l.refuse(c, uid, why)
			continue
		}
		return &Conn{Conn: c, Cred: cred, HasCred: ok, release: func() { l.Counter.Release(uid) }}, nil
	}
}

func (l *Listener) refuse(c net.Conn, uid int, why string) {
	if l.Refuse != nil {
		// A fresh socket's buffer is empty: the write does not wait, and
		// the deadline makes sure of it.
		c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		c.Write(l.Refuse(why))
	}
	c.Close()
	if l.Log == nil {
		return
	}
	missed := 0
	if l.Throttle != nil {
		var ok bool
		if ok, missed = l.Throttle.Allow(uid, time.Now()); !ok {
			return
		}
	}
	l.Log(uid, why, missed)
}

// Conn is a counted connection: closing it gives its count back (once).
// Cred is its peer's credentials, read at accept time, when HasCred.
type Conn struct {
	net.Conn
	Cred    unix.Ucred
	HasCred bool
	once    sync.Once
	release func()
}

// Close closes the connection and gives back its place.
func (c *Conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// Unwrap is the connection underneath (a *net.UnixConn for a Unix
// socket), for what needs the concrete type (passing descriptors).
func (c *Conn) Unwrap() net.Conn { return c.Conn }

// PeerCred is the credentials of a Unix socket's peer (SO_PEERCRED: as
// they were when it connected); ok false for another kind of connection or
// when the kernel does not say.
func PeerCred(c net.Conn) (unix.Ucred, bool) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return unix.Ucred{}, false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return unix.Ucred{}, false
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return unix.Ucred{}, false
	}
	return *cred, true
}
