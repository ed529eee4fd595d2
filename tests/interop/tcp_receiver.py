"""A receiver for ceilo's tcp:// publisher, run with Ceilometer's own Python.

Reads frames as Ceilometer's TCP publisher writes them (8 bytes little-endian length,
then a msgpack meter message), checks each with Ceilometer's verify_signature and
writes one JSON line per message to --log: {"valid": bool, "message": {...}}.
"""
import argparse
import json
import os
import socketserver
import threading

import msgpack

from ceilometer.publisher import utils

parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int, default=0)
parser.add_argument("--port-file", required=True)
parser.add_argument("--log", required=True)
parser.add_argument("--secret", required=True)
args = parser.parse_args()
lock = threading.Lock()


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            head = read_exact(self.request, 8)
            if head is None:
                return
            body = read_exact(self.request, int.from_bytes(head, "little"))
            if body is None:
                return
            message = msgpack.loads(body, raw=False)
            valid = utils.verify_signature(message, args.secret)
            with lock, open(args.log, "a") as f:
                f.write(json.dumps({"valid": valid, "message": message}) + "\n")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


server = Server(("127.0.0.1", args.port), Handler)
with open(args.port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(args.port_file + ".tmp", args.port_file)
server.serve_forever()
