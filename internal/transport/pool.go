package transport

import (
	"math/bits"
	"sync"
)

// pool lends the buffers of stream messages (a grpc mem.BufferPool):
// power-of-two classes from 256 bytes to 4 MiB, larger ones not pooled.
// Unlike gRPC's own pool it does not clear what it lends: every user
// writes a buffer whole before reading it (Marshal appends, Unmarshal
// copies the message in), and clearing a migration's megabytes of pages
// cost a tenth of its CPU.
type pool struct {
	classes [maxClass - minClass + 1]sync.Pool
}

const minClass, maxClass = 8, 22

var bufPool = &pool{}

// Get returns a buffer of length n.
func (p *pool) Get(n int) *[]byte {
	c := class(n)
	if c > maxClass {
		b := make([]byte, n)
		return &b
	}
	if b, ok := p.classes[c-minClass].Get().(*[]byte); ok {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, 1<<c)
	return &b
}

// Put takes back a buffer Get returned (or a prefix of it).
func (p *pool) Put(b *[]byte) {
	c := bits.Len(uint(cap(*b))) - 1 // cap is a power of two when it came from Get
	if c < minClass || c > maxClass || cap(*b) != 1<<c {
		return
	}
	p.classes[c-minClass].Put(b)
}

// class is the smallest power of two at least n (and minClass).
func class(n int) int {
	if n <= 1<<minClass {
		return minClass
	}
	return bits.Len(uint(n - 1))
}
