package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// A Unix stream socketpair whose both ends the process holds (python
// asyncio's self-pipe, a program that talks to itself) has nothing
// outside the process: it moves with it. Which sockets are such pairs is
// asked of the kernel (sock_diag: each Unix socket's type, name, peer and
// shutdown state); the dump peeks at what each end has queued to read
// (MSG_PEEK on a pidfd_getfd copy; descriptors in flight are refused),
// and the restore makes a new socketpair, sends each end's queue through
// the other, and puts the ends at every number the old ones had, with
// O_NONBLOCK and O_CLOEXEC. Socket options (buffer sizes...) are not
// carried. Every other socket stays refused.

// unixSock is what sock_diag says of one Unix socket.
type unixSock struct {
	Type     uint8 // SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET
	Peer     uint64
	Named    bool
	Shutdown uint8
}

// socketID returns the inode of a socket:[N] link.
func socketID(target string) (uint64, bool) {
	s, ok := strings.CutPrefix(target, "socket:[")
	if !ok || !strings.HasSuffix(s, "]") {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64)
	return n, err == nil
}

// Netlink sock_diag for AF_UNIX (linux/unix_diag.h).
const (
	udiagShowName   = 0x1
	udiagShowPeer   = 0x4
	unixDiagName    = 0
	unixDiagPeer    = 2
	unixDiagShutdwn = 6
	unixDiagMsgLen  = 16 // family, type, state, pad, ino, cookie[2]
)

// unixSockets asks the kernel about every Unix socket of this network
// namespace.
func unixSockets() (map[uint64]unixSock, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("sock_diag: %w", err)
	}
	defer unix.Close(fd)
	le := binary.LittleEndian
	req := make([]byte, unix.NLMSG_HDRLEN+24)
	le.PutUint32(req[0:], uint32(len(req)))
	le.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	le.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	le.PutUint32(req[8:], 1) // seq
	r := req[unix.NLMSG_HDRLEN:]
	r[0] = unix.AF_UNIX
	le.PutUint32(r[4:], 0xffffffff) // every state
	le.PutUint32(r[12:], udiagShowName|udiagShowPeer)
	le.PutUint32(r[16:], 0xffffffff) // no cookie
	le.PutUint32(r[20:], 0xffffffff)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, fmt.Errorf("sock_diag: %w", err)
	}
	socks := map[uint64]unixSock{}
	buf := make([]byte, 1<<16)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return nil, fmt.Errorf("sock_diag: %w", err)
		}
		done, err := parseUnixDiag(buf[:n], socks)
		if err != nil || done {
			return socks, err
		}
	}
}

// parseUnixDiag reads netlink messages of unix_diag_msg into socks; done
// at NLMSG_DONE.
func parseUnixDiag(b []byte, socks map[uint64]unixSock) (done bool, err error) {
	le := binary.LittleEndian
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(le.Uint32(b))
		typ := le.Uint16(b[4:])
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return false, errors.New("sock_diag: bad message length")
		}
		msg := b[unix.NLMSG_HDRLEN:l]
		b = b[min(len(b), (l+3)&^3):]
		switch typ {
		case unix.NLMSG_DONE:
			return true, nil
		case unix.NLMSG_ERROR:
			if len(msg) >= 4 && int32(le.Uint32(msg)) != 0 {
				return false, fmt.Errorf("sock_diag: %w", unix.Errno(-int32(le.Uint32(msg))))
			}
			continue
		case unix.SOCK_DIAG_BY_FAMILY:
		default:
			continue
		}
		if len(msg) < unixDiagMsgLen {
			return false, errors.New("sock_diag: short message")
		}
		s := unixSock{Type: msg[1]}
		ino := uint64(le.Uint32(msg[4:]))
		for a := msg[unixDiagMsgLen:]; len(a) >= 4; {
			al, at := int(le.Uint16(a)), le.Uint16(a[2:])
			if al < 4 || al > len(a) {
				return false, errors.New("sock_diag: bad attribute length")
			}
			v := a[4:al]
			switch at {
			case unixDiagName:
				s.Named = true
			case unixDiagPeer:
				if len(v) >= 4 {
					s.Peer = uint64(le.Uint32(v))
				}
			case unixDiagShutdwn:
				if len(v) >= 1 {
					s.Shutdown = v[0]
				}
			}
			a = a[min(len(a), (al+3)&^3):]
		}
		socks[ino] = s
	}
	return false, nil
}

// innerPairs returns the sockets of fds that are ends of a Unix stream
// socketpair whose both ends the process holds, and why each other Unix
// socket that looks like one is not carried (by inode).
func innerPairs(fds []fdView, socks map[uint64]unixSock) (in map[uint64]bool, why map[uint64]string) {
	have := map[uint64]bool{}
	for _, f := range fds {
		if id, ok := socketID(f.Target); ok {
			have[id] = true
		}
	}
	in, why = map[uint64]bool{}, map[uint64]string{}
	for id := range have {
		s, ok := socks[id]
		switch {
		case !ok, s.Named, s.Peer == 0 || !have[s.Peer]:
			// not Unix, bound to a name, unconnected or connected outside
		case s.Type != unix.SOCK_STREAM:
			why[id] = "a socketpair of datagrams or packets: not yet carried"
		case s.Shutdown != 0 || socks[s.Peer].Shutdown != 0:
			why[id] = "a socketpair shut down in a direction: not carried"
		default:
			in[id] = true
		}
	}
	return in, why
}

// peekSocket reads, without taking it, what the socket at fd of pid has
// queued to read. Descriptors in flight (SCM_RIGHTS) are refused.
func peekSocket(pid, fd int) ([]byte, error) {
	c, err := fdOf(pid, fd)
	if err != nil {
		return nil, err
	}
	defer unix.Close(c)
	n, err := unix.IoctlGetInt(c, unix.SIOCINQ)
	if err != nil {
		return nil, fmt.Errorf("SIOCINQ: %w", err)
	}
	if n == 0 {
		return nil, nil
	}
	data, oob := make([]byte, n), make([]byte, 256)
	k, oobn, _, _, err := unix.Recvmsg(c, data, oob, unix.MSG_PEEK|unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("peek: %w", err)
	}
	if oobn > 0 {
		if cm, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, m := range cm {
				if fds, err := unix.ParseUnixRights(&m); err == nil {
					for _, f := range fds {
						unix.Close(f)
					}
				}
			}
		}
		return nil, errors.New("descriptors or credentials in flight: not carried")
	}
	if k != n {
		return nil, fmt.Errorf("peeked %d of %d queued bytes", k, n)
	}
	return data, nil
}

// unixPairs makes the image's socketpairs again, one at a time: a new
// pair above every number the old ends had, each end's queue sent
// through the other end (from outside, with a pidfd_getfd copy), then
// its ends dup3'd to every number with their flags.
func (r *restorer) unixPairs(objs []KObject) error {
	in, le := r.in, binary.LittleEndian
	top := 0
	ends := map[uint64][]KObject{}
	for _, o := range objs {
		if o.Kind == ObjUnixPair {
			ends[o.Sock] = append(ends[o.Sock], o)
			top = max(top, o.Fd)
		}
	}
	done := map[uint64]bool{}
	for _, o := range objs {
		if o.Kind != ObjUnixPair || done[o.Sock] {
			continue
		}
		a, b := o.Sock, o.Peer
		done[a], done[b] = true, true
		if len(ends[b]) == 0 {
			return fmt.Errorf("checkpoint: socket %d's peer %d is not in the image", a, b)
		}
		if _, err := in.callOK(unix.SYS_SOCKETPAIR, unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0, r.scratch+scratchStruct); err != nil {
			return fmt.Errorf("checkpoint: socketpair: %w", err)
		}
		raw := make([]byte, 8)
		if _, err := r.mem.ReadAt(raw, int64(r.scratch+scratchStruct)); err != nil {
			return err
		}
		made := [2]uint64{uint64(le.Uint32(raw)), uint64(le.Uint32(raw[4:]))}
		for i, fd := range made {
			n, err := in.callOK(unix.SYS_FCNTL, fd, unix.F_DUPFD_CLOEXEC, uint64(top+1))
			in.call(unix.SYS_CLOSE, fd)
			if err != nil {
				return fmt.Errorf("checkpoint: move a new socketpair: %w", err)
			}
			made[i] = n
		}
		err := func() error {
			for i, id := range []uint64{a, b} {
				if data := ends[id][0].Data; len(data) > 0 {
					if err := r.sendVia(made[1-i], data); err != nil {
						return err
					}
				}
				for _, e := range ends[id] {
					if _, err := in.callOK(unix.SYS_DUP3, made[i], uint64(e.Fd), uint64(e.Flags&unix.O_CLOEXEC)); err != nil {
						return fmt.Errorf("checkpoint: dup3 socket to %d: %w", e.Fd, err)
					}
					if e.Flags&unix.O_NONBLOCK != 0 {
						if _, err := in.callOK(unix.SYS_FCNTL, uint64(e.Fd), unix.F_SETFL, unix.O_NONBLOCK); err != nil {
							return fmt.Errorf("checkpoint: fcntl socket %d: %w", e.Fd, err)
						}
					}
				}
			}
			return nil
		}()
		in.call(unix.SYS_CLOSE, made[0])
		in.call(unix.SYS_CLOSE, made[1])
		if err != nil {
			return err
		}
	}
	return nil
}

// sendVia sends data through the new process's socket at fd.
func (r *restorer) sendVia(fd uint64, data []byte) error {
	c, err := fdOf(r.in.pid, int(fd))
	if err != nil {
		return fmt.Errorf("checkpoint: the new socket: %w", err)
	}
	defer unix.Close(c)
	for len(data) > 0 {
		n, err := unix.SendmsgN(c, data, nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		if err != nil {
			return fmt.Errorf("checkpoint: fill the new socketpair: %w", err)
		}
		data = data[n:]
	}
	return nil
}
