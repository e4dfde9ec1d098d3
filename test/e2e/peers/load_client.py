"""Sends many POSTs over a few keep-alive connections, one thread per connection, each body
unique ("<connection>-<request>"), and prints "ok <requests>" when every echo matched.
Enough traffic for tapwire's hot paths to reach their optimised code.

Usage: python3 load_client.py HOST PORT CONNECTIONS REQUESTS_PER_CONNECTION
"""
import http.client
import sys
import threading

host, port, conns, per_conn = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
failures = []


def worker(c):
    conn = http.client.HTTPConnection(host, port)
    for r in range(per_conn):
        body = f"{c}-{r}".encode()
        conn.request("POST", f"/echo?c={c}&r={r}", body=body)
        res = conn.getresponse()
        if res.read() != body:
            failures.append((c, r))
    conn.close()


threads = [threading.Thread(target=worker, args=(c,)) for c in range(conns)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if failures:
    print("failed", failures[:5], flush=True)
    sys.exit(1)
print("ok", conns * per_conn, flush=True)
