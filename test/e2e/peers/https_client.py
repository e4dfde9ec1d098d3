"""A Python HTTPS client (http.client over ssl): GET /text, then POST /echo with BODY_SIZE
bytes, on one keep-alive connection. Prints "port N", then "status LENGTH" per response.

Usage: python3 https_client.py PORT CERT BODY_SIZE
"""
import http.client
import ssl
import sys

port, cert, size = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
context = ssl.create_default_context(cafile=cert)
conn = http.client.HTTPSConnection("127.0.0.1", port, context=context)
conn.connect()
print("port", conn.sock.getsockname()[1], flush=True)
conn.request("GET", "/text", headers={"X-Client": "python"})
res = conn.getresponse()
print(res.status, len(res.read()), flush=True)
conn.request("POST", "/echo", body=bytes(i % 251 for i in range(size)), headers={"Content-Type": "application/octet-stream"})
res = conn.getresponse()
print(res.status, len(res.read()), flush=True)
conn.close()
