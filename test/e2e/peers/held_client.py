"""Opens one keep-alive connection and sends a GET on it each time a line arrives on stdin,
printing the local port once connected and "done <status> <length>" after each response.
Lets a test open a connection before tapwire starts and use it after.

Usage: python3 held_client.py HOST PORT PATH
"""
import http.client
import sys

host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
conn = http.client.HTTPConnection(host, port)
conn.connect()
print("port", conn.sock.getsockname()[1], flush=True)
for line in sys.stdin:
    if not line.strip():
        break
    conn.request("GET", path, headers={"X-Request": line.strip()})
    res = conn.getresponse()
    body = res.read()
    print("done", res.status, len(body), flush=True)
conn.close()
