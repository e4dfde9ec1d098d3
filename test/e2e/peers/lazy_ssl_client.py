"""Starts without ssl; on a line from stdin imports ssl (Python loads _ssl and libssl only
then), waits 0.1 s, makes one HTTPS GET /text and prints "done STATUS"; exits at the next line.

Usage: python3 lazy_ssl_client.py PORT CERT
"""
import sys
import time

port, cert = int(sys.argv[1]), sys.argv[2]
print("ready", flush=True)
sys.stdin.readline()
import http.client  # noqa: E402
import ssl  # noqa: E402

time.sleep(0.1)
conn = http.client.HTTPSConnection("127.0.0.1", port, context=ssl.create_default_context(cafile=cert))
conn.request("GET", "/text")
res = conn.getresponse()
res.read()
print("done", res.status, flush=True)
sys.stdin.readline()  # stays until told, so its memory map can be looked at
