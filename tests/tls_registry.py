"""A minimal HTTPS Schema Registry for the TLS test: answers GET /schemas/ids/1 and /subjects.

Usage: python3 tests/tls_registry.py <cert.pem> <key.pem>; prints the port once it listens.
"""
import http.server
import json
import ssl
import sys

SCHEMA = '{"type": "record", "name": "T", "fields": [{"name": "id", "type": "long"}]}'


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/schemas/ids/1"):
            body = {"schema": SCHEMA}
        elif self.path.startswith("/subjects"):
            body = ["t-value"]
        else:
            self.send_response(404)
            self.end_headers()
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[1], sys.argv[2])
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
