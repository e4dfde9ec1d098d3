"""A git smart-HTTP server over TLS: git http-backend run as CGI by Python's http.server.

Usage: python3 git_https.py PORT CERT KEY PROJECT_ROOT
  https://127.0.0.1:PORT/git/REPO serves the bare repository PROJECT_ROOT/REPO.
"""
import os
import ssl
import sys
from http.server import CGIHTTPRequestHandler, ThreadingHTTPServer

port, cert, key, root = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
os.environ["GIT_PROJECT_ROOT"] = root
os.environ["GIT_HTTP_EXPORT_ALL"] = "1"
# The repositories belong to whoever made them; http-backend may read them all the same.
os.environ["GIT_CONFIG_COUNT"] = "1"
os.environ["GIT_CONFIG_KEY_0"] = "safe.directory"
os.environ["GIT_CONFIG_VALUE_0"] = "*"


class Handler(CGIHTTPRequestHandler):
    # /git/... runs git http-backend, the rest of the path its PATH_INFO.
    cgi_directories = ["/git"]
    # A forked CGI would write to the socket itself, past TLS: the output goes through here.
    have_fork = False

    def log_message(self, *args):
        pass

    def finish(self):
        # The body ends with the connection (HTTP/1.0, no length): GnuTLS wants the TLS
        # close_notify then, or it calls the response cut short.
        super().finish()
        try:
            self.request.unwrap()
        except OSError:
            pass

    def is_cgi(self):
        if self.path.startswith("/git/"):
            self.cgi_info = ("/git", "git-http-backend" + self.path[len("/git"):])
            return True
        return False

    def translate_path(self, path):
        # The one script there is: git's own.
        if path.startswith("/git/git-http-backend"):
            return "/usr/lib/git-core/git-http-backend"
        return super().translate_path(path)


server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
print("listening", flush=True)
server.serve_forever()
