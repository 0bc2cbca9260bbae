// Command goticker writes 0, 1, 2... to the file named by its argument,
// one line per tick of a 20 ms time.Ticker, from a goroutine that hands
// each number over a channel to another that sleeps a little before each
// write. A Go program like any other: its runtime waits in an epoll
// instance and wakes it with an eventfd. It exits 0 at SIGUSR1.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	f, err := os.OpenFile(os.Args[1], os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	nums := make(chan int)
	go func() {
		t := time.NewTicker(20 * time.Millisecond)
		for i := 0; ; i++ {
			<-t.C
			nums <- i
		}
	}()
	for {
		select {
		case n := <-nums:
			time.Sleep(time.Millisecond)
			if _, err := fmt.Fprintln(f, n); err != nil {
				os.Exit(2)
			}
		case <-sig:
			os.Exit(0)
		}
	}
}
