"""A receiving HTTP(S) endpoint for ceilo's remote publisher tests.

Every request is written as one JSON line to --log: method, path (with query),
headers and body. With --otlp the body is decoded as an OTLP metrics export request
by PyPI's opentelemetry-proto (protobuf or JSON, by Content-Type) and written as
protobuf's own dict form ("decoded"); a body that does not decode is answered 400.
--status answers every request with that code. --port 0 picks a port, written to
--port-file once listening.
"""
import argparse
import base64
import http.server
import json
import ssl
import sys
import threading

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=0)
parser.add_argument("--port-file", required=True)
parser.add_argument("--log", required=True)
parser.add_argument("--status", type=int, default=200)
parser.add_argument("--tls-cert")
parser.add_argument("--tls-key")
parser.add_argument("--otlp", action="store_true")
args = parser.parse_args()

lock = threading.Lock()

if args.otlp:
    from google.protobuf import json_format
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2


def decode_otlp(content_type, body):
    request = metrics_service_pb2.ExportMetricsServiceRequest()
    if content_type.startswith("application/x-protobuf"):
        request.ParseFromString(body)
    else:
        json_format.Parse(body.decode("utf-8"), request)
    return json_format.MessageToDict(request, preserving_proto_field_name=True)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        entry = {
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("utf-8", "replace"),
            "body_b64": base64.b64encode(body).decode(),
        }
        status = args.status
        if args.otlp and status == 200:
            try:
                entry["decoded"] = decode_otlp(self.headers.get("Content-Type", ""), body)
            except Exception as e:  # what the receiver refuses, the test sees
                entry["error"] = repr(e)
                status = 400
        if status == 200:
            with lock, open(args.log, "a") as f:
                f.write(json.dumps(entry) + "\n")
        reply = b"{}" if status == 200 else b"refused by the test receiver"
        self.send_response(status)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_PUT = do_POST

    def log_message(self, *a):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
if args.tls_cert:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.tls_cert, args.tls_key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
with open(args.port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os
os.rename(args.port_file + ".tmp", args.port_file)
sys.stdout.flush()
server.serve_forever()
