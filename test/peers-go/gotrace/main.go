// gotrace does, on request, the things tapwire gen's bpftrace templates watch for, and
// prints what it did, so a test can compare the two.
//
//	gotrace spawn N               start N goroutines running main.worker
//	gotrace panic N               panic and recover N times (in main.mayPanic)
//	gotrace shortread FILE        read FILE into a 4096-byte buffer through io.Reader
//	gotrace dial HOST:PORT        dial TCP, then close
//	gotrace get URL [CA] [KEYLOG] GET URL with net/http (trusting CA; TLS secrets to KEYLOG)
//	gotrace rand N                read N bytes from crypto/rand, print them in hex
//	gotrace work N                call main.work N times
package main

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

var workers sync.WaitGroup

// worker takes no arguments: `go worker()` then starts worker itself (a call with arguments
// would start a wrapper closure that passes them).
//
//go:noinline
func worker() {
	defer workers.Done()
	time.Sleep(time.Millisecond)
}

//go:noinline
func mayPanic(i int) (recovered bool) {
	defer func() {
		if r := recover(); r != nil {
			recovered = true
		}
	}()
	panic(fmt.Sprintf("panic %d", i))
}

//go:noinline
func work(i int) int {
	time.Sleep(2 * time.Millisecond)
	return i * 2
}

func main() {
	// A moment before exiting: bpftrace names functions and stacks from the live process.
	defer time.Sleep(300 * time.Millisecond)
	n := 0
	if len(os.Args) > 2 {
		n, _ = strconv.Atoi(os.Args[2])
	}
	switch os.Args[1] {
	case "spawn":
		for i := 0; i < n; i++ {
			workers.Add(1)
			go worker()
		}
		workers.Wait()
		fmt.Println("spawned", n)
	case "panic":
		count := 0
		for i := 0; i < n; i++ {
			if mayPanic(i) {
				count++
			}
		}
		fmt.Println("recovered", count)
	case "shortread":
		f, err := os.Open(os.Args[2])
		if err != nil {
			panic(err)
		}
		var r io.Reader = f
		buf := make([]byte, 4096)
		got, err := r.Read(buf)
		fmt.Println("read", got, len(buf), err)
	case "dial":
		c, err := net.Dial("tcp", os.Args[2])
		if err != nil {
			panic(err)
		}
		fmt.Println("dialed", c.RemoteAddr())
		c.Close()
	case "get":
		cfg := &tls.Config{}
		if len(os.Args) > 3 {
			pem, err := os.ReadFile(os.Args[3])
			if err != nil {
				panic(err)
			}
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(pem)
			cfg.RootCAs = pool
		}
		if len(os.Args) > 4 {
			w, err := os.Create(os.Args[4])
			if err != nil {
				panic(err)
			}
			defer w.Close()
			cfg.KeyLogWriter = w
		}
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
		res, err := client.Get(os.Args[2])
		if err != nil {
			panic(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		fmt.Println("status", res.StatusCode)
	case "rand":
		b := make([]byte, n)
		if _, err := io.ReadFull(rand.Reader, b); err != nil {
			panic(err)
		}
		fmt.Println("random", hex.EncodeToString(b))
	case "work":
		sum := 0
		for i := 0; i < n; i++ {
			sum += work(i)
		}
		fmt.Println("worked", n, sum)
	}
}
