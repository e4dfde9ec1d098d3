"""An HTTP/1.1 server for tapwire's end-to-end tests (Python's http.server, keep-alive).

  POST /echo            the request body back, with Content-Length
  GET  /chunked?n=N     N chunks "chunk-<i>\n", Transfer-Encoding: chunked, with a trailer
  GET  /gzip?size=N     N bytes of text, gzip-encoded (Content-Encoding: gzip)
  GET  /big?size=N      N bytes, byte i = i % 251
  GET  /text            a short text body

Usage: python3 echo_server.py PORT [BIND_ADDRESS]
"""
import gzip
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


def pattern(size):
    block = bytes(i % 251 for i in range(251 * 64))
    out = bytearray()
    while len(out) < size:
        out += block
    return bytes(out[:size])


def text_of(size):
    line = b"tapwire sees every request and response.\n"
    return (line * (size // len(line) + 1))[:size]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, Nagle and the peer's
    # delayed ACK stall each keep-alive response for 40 ms.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def send_body(self, body, content_type="application/octet-stream", extra=()):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        for name, value in extra:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.send_body(body, self.headers.get("Content-Type", "application/octet-stream"))

    def do_GET(self):
        url = urlparse(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Trailer", "X-Checksum")
            self.end_headers()
            for i in range(int(q.get("n", "3"))):
                data = b"chunk-%d\n" % i
                self.wfile.write(b"%x;ext=%d\r\n%s\r\n" % (len(data), i, data))
                self.wfile.flush()
            self.wfile.write(b"0\r\nX-Checksum: done\r\n\r\n")
        elif url.path == "/gzip":
            self.send_body(gzip.compress(text_of(int(q.get("size", "1000")))), "text/plain", [("Content-Encoding", "gzip")])
        elif url.path == "/big":
            self.send_body(pattern(int(q.get("size", "1048576"))))
        elif url.path == "/text":
            self.send_body(b"hello from tapwire's test server\n", "text/plain")
        else:
            self.send_error(404)


class Server(ThreadingHTTPServer):
    daemon_threads = True


if __name__ == "__main__":
    port = int(sys.argv[1])
    bind = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    Server.address_family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    server = Server((bind, port), Handler)
    print("listening", flush=True)
    server.serve_forever()
