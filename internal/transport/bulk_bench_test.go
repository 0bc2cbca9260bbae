package transport

import (
	"context"
	"crypto/tls"
	"hash/crc32"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/ssi-cluster/ssi/internal/pki"
)

// sinkHandler drains Migrate streams, reading each message's bytes once
// (a checksum, as a migration target does), and answers with one empty
// message.
type sinkHandler struct{ fakeHandler }

func (h *sinkHandler) Migrate(s Stream) error {
	table := crc32.MakeTable(crc32.Castagnoli)
	for {
		var m lentMsg
		if err := s.RecvMsg(&m); err != nil {
			if err == io.EOF {
				return s.SendMsg(&lentMsg{})
			}
			return err
		}
		crc32.Checksum(m.data, table)
		m.release()
	}
}

// cpuTime is the user and system time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the CPU time (both ends: they share this process)
// per MiB sent since start: unlike the wall time, it does not hide a
// cost behind a second core.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(time.Millisecond)/float64(b.N)*(1<<20)/benchChunk, "cpu-ms/MiB")
}

const benchChunk = 1 << 20

// BenchmarkBulkStream is the throughput of one Bulk stream (gRPC over
// mutual TLS on loopback), in 1 MiB messages, as a migration sends pages.
func BenchmarkBulkStream(b *testing.B) {
	c := newCluster(b, "a")
	addr := startServer(b, c, &sinkHandler{})
	cl := c.client(b, addr, Bulk)
	s, err := cl.Migrate(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	msg := lentMsg{data: make([]byte, benchChunk)}
	for i := range msg.data {
		msg.data[i] = byte(i) | 1
	}
	b.SetBytes(benchChunk)
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if err := s.SendMsg(&msg); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.CloseSend(); err != nil {
		b.Fatal(err)
	}
	var m lentMsg
	if err := s.RecvMsg(&m); err != nil {
		b.Fatal(err)
	}
	reportCPU(b, cpu0)
}

// BenchmarkTLSConn is the same bytes over a bare mutual-TLS connection
// with the cluster's certificates: the ceiling for any stream over TLS.
func BenchmarkTLSConn(b *testing.B) {
	c := newCluster(b, "a")
	sconf, err := pki.ServerTLS(c.serverCert, c.serverKey, c.ca.Pool(), true)
	if err != nil {
		b.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", sconf)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	done := make(chan int64, 1)
	go func() {
		s, err := l.Accept()
		if err != nil {
			done <- -1
			return
		}
		n, _ := io.CopyBuffer(io.Discard, s, make([]byte, 256<<10))
		s.Close()
		done <- n
	}()
	conf := c.clientTLS(b)
	conf.ServerName = "server-node"
	conn, err := tls.Dial("tcp", l.Addr().String(), conf)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, benchChunk)
	b.SetBytes(benchChunk)
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := conn.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	conn.CloseWrite()
	if n := <-done; n != int64(b.N)*benchChunk {
		b.Fatalf("received %d bytes, sent %d", n, int64(b.N)*benchChunk)
	}
	reportCPU(b, cpu0)
}
