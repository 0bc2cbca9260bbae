package rexec

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// OpenPty returns a new pseudo-terminal's master and slave. The slave is
// opened through the master (TIOCGPTPEER), so it is the right one even
// when /dev/pts is not this namespace's.
func OpenPty() (master, slave *os.File, err error) {
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open /dev/ptmx: %w", err)
	}
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(m)
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	// TIOCGPTPEER takes the slave's open flags as its argument.
	s, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		unix.Close(m)
		return nil, nil, fmt.Errorf("open pty slave: %w", errno)
	}
	return os.NewFile(uintptr(m), "ptmx"), os.NewFile(uintptr(s), "pts"), nil
}

// SetWinsize sets a terminal's size.
func SetWinsize(f *os.File, rows, cols uint16) error {
	return unix.IoctlSetWinsize(int(f.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
}

// GetWinsize reads a terminal's size.
func GetWinsize(fd int) (rows, cols uint16, err error) {
	ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
	if err != nil {
		return 0, 0, err
	}
	return ws.Row, ws.Col, nil
}

// EncodeTermios returns a terminal's settings as bytes (for Spec.Termios).
func EncodeTermios(t *unix.Termios) []byte {
	b := make([]byte, 0, 44)
	for _, v := range []uint32{t.Iflag, t.Oflag, t.Cflag, t.Lflag} {
		b = append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
	}
	b = append(b, t.Line)
	b = append(b, t.Cc[:]...)
	for _, v := range []uint32{t.Ispeed, t.Ospeed} {
		b = append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
	}
	return b
}

// DecodeTermios is the inverse of EncodeTermios.
func DecodeTermios(b []byte) (*unix.Termios, error) {
	var t unix.Termios
	if len(b) != 4*4+1+len(t.Cc)+8 {
		return nil, fmt.Errorf("terminal settings of %d bytes, want %d", len(b), 4*4+1+len(t.Cc)+8)
	}
	u32 := func(i int) uint32 { return uint32(b[i]) | uint32(b[i+1])<<8 | uint32(b[i+2])<<16 | uint32(b[i+3])<<24 }
	t.Iflag, t.Oflag, t.Cflag, t.Lflag = u32(0), u32(4), u32(8), u32(12)
	t.Line = b[16]
	copy(t.Cc[:], b[17:17+len(t.Cc)])
	t.Ispeed, t.Ospeed = u32(17+len(t.Cc)), u32(21+len(t.Cc))
	return &t, nil
}

// MakeRaw puts a terminal in raw mode (as cfmakeraw) and returns the old
// settings.
func MakeRaw(fd int) (*unix.Termios, error) {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	t := *old
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &t); err != nil {
		return nil, err
	}
	return old, nil
}

// RestoreTerm puts back settings saved by MakeRaw.
func RestoreTerm(fd int, t *unix.Termios) error { return unix.IoctlSetTermios(fd, unix.TCSETSW, t) }
