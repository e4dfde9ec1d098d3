"""echo_server.py's endpoints over TLS (Python's ssl: OpenSSL's SSL_read_ex/SSL_write_ex).

Usage: python3 https_echo.py PORT CERT KEY
"""
import ssl
import sys

from echo_server import Handler, Server

port, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
server = Server(("127.0.0.1", port), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
print("listening", flush=True)
server.serve_forever()
