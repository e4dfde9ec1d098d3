// A Go net/http peer for tapwire's tests: an HTTPS server, or a client that makes requests
// to one, over HTTP/1.1 or HTTP/2.
//
//	gohttps server PORT CERT KEY        GET /text, POST /echo, GET /deep?n=N (a deep stack)
//	gohttps client URL CERT N [h2]      N GETs of URL on one client; prints "STATUS LEN" each
package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
)

func deep(n int) int {
	var pad [64]byte
	if n == 0 {
		return int(pad[0])
	}
	return deep(n-1) + 1
}

func main() {
	switch os.Args[1] {
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
	case "client":
		pem, err := os.ReadFile(os.Args[3])
		if err != nil {
			panic(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: len(os.Args) > 5 && os.Args[5] == "h2"}
		if !transport.ForceAttemptHTTP2 {
			transport.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
		}
		client := &http.Client{Transport: transport}
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
