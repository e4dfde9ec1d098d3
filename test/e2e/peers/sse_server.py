"""Server-Sent Events for tapwire's tests.

Usage: python3 sse_server.py PORT

GET /events?n=N sends N events, one every 100 ms (after a comment and a retry field):
"id: I", "event: tick", "data: tick I" and "data: second line", then closes. Prints
"sent I MS" (MS: milliseconds since the epoch) as each event goes out.
"""
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        n = int(parse_qs(urlparse(self.path).query).get("n", ["5"])[0])
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.write(b": a comment, ignored\nretry: 500\n\n")
        self.wfile.flush()
        for i in range(n):
            time.sleep(0.1)
            self.wfile.write(f"id: {i}\nevent: tick\ndata: tick {i}\ndata: second line\n\n".encode())
            self.wfile.flush()
            print(f"sent {i} {int(time.time() * 1000)}", flush=True)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
