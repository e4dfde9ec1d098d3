// A Go net/http peer for tapwire's tests: an HTTPS server, or a client that makes requests
// to one, over HTTP/1.1 or HTTP/2.
//
//	gohttps server PORT CERT KEY        GET /text, POST /echo, GET /deep?n=N (a deep stack)
//	gohttps client URL CERT N [h2]      N GETs of URL on one client; prints "STATUS LEN" each
//	gohttps post URL CERT BODY          one POST of BODY; prints "STATUS RESPONSE-BODY"
//	gohttps load URL CERT N CONC        N GETs of URL?i=K from CONC goroutines; prints "ok N"
//	gohttps layout                      the struct offsets tapwire's Go probes follow, as
//	                                    the compiler laid them out (reflect), in JSON
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

func deep(n int) int {
	var pad [64]byte
	if n == 0 {
		return int(pad[0])
	}
	return deep(n-1) + 1
}

// offset of a field, unexported ones included (reflect sees them; unsafe.Offsetof cannot).
func offset(t reflect.Type, name string) uintptr {
	f, ok := t.FieldByName(name)
	if !ok {
		panic(t.String() + " has no field " + name)
	}
	return f.Offset
}

func field(t reflect.Type, name string) reflect.Type {
	f, _ := t.FieldByName(name)
	return f.Type
}

func main() {
	switch os.Args[1] {
	case "layout":
		tlsConn := reflect.TypeOf(tls.Conn{})
		tcpConn := reflect.TypeOf(net.TCPConn{})
		conn := field(tcpConn, "conn")    // net.conn
		netFD := field(conn, "fd").Elem() // net.netFD
		pollFD := field(netFD, "pfd")     // internal/poll.FD
		out, _ := json.Marshal(map[string]uintptr{
			"tlsConnConn": offset(tlsConn, "conn"),
			"tcpConnFd":   offset(tcpConn, "conn") + offset(conn, "fd"),
			"netFdSysfd":  offset(netFD, "pfd") + offset(pollFD, "Sysfd"),
		})
		fmt.Println(string(out))
	case "server":
		mux := http.NewServeMux()
		mux.HandleFunc("/text", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "hello from go\n")
		})
		mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(body)
		})
		mux.HandleFunc("/deep", func(w http.ResponseWriter, r *http.Request) {
			n, _ := strconv.Atoi(r.URL.Query().Get("n"))
			fmt.Fprintf(w, "depth %d\n", deep(n))
		})
		srv := &http.Server{Addr: "127.0.0.1:" + os.Args[2], Handler: mux}
		fmt.Println("listening")
		if err := srv.ListenAndServeTLS(os.Args[3], os.Args[4]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "post":
		res, err := newClient(false).Post(os.Args[2], "text/plain", strings.NewReader(os.Args[4]))
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		fmt.Println(res.StatusCode, string(body))
	case "load":
		client := newClient(false)
		n, _ := strconv.Atoi(os.Args[4])
		conc, _ := strconv.Atoi(os.Args[5])
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		next := make(chan int)
		for w := 0; w < conc; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					res, err := client.Get(fmt.Sprintf("%s%si=%d", os.Args[2], sep(os.Args[2]), i))
					if err != nil {
						fmt.Fprintln(os.Stderr, err)
						continue
					}
					io.ReadAll(res.Body)
					res.Body.Close()
					if res.StatusCode == 200 {
						mu.Lock()
						ok++
						mu.Unlock()
					}
				}
			}()
		}
		for i := 0; i < n; i++ {
			next <- i
		}
		close(next)
		wg.Wait()
		fmt.Println("ok", ok)
	case "client":
		client := newClient(len(os.Args) > 5 && os.Args[5] == "h2")
		n, _ := strconv.Atoi(os.Args[4])
		for i := 0; i < n; i++ {
			res, err := client.Get(os.Args[2])
			if err != nil {
				panic(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			fmt.Println(res.StatusCode, len(body))
		}
	}
}

func sep(url string) string {
	if strings.Contains(url, "?") {
		return "&"
	}
	return "?"
}

// newClient trusts the test certificate (os.Args[3]); HTTP/2 only when asked.
func newClient(h2 bool) *http.Client {
	pem, err := os.ReadFile(os.Args[3])
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: h2, MaxIdleConnsPerHost: 256}
	if !h2 {
		transport.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	return &http.Client{Transport: transport}
}
