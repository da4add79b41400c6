"""A malicious checkpoint and a local HTTP server that serves it (tests only)."""

import contextlib
import http.server
import pickle
import threading


class _CreateFile:
    """Unpickling this creates ``path``: a stand-in for arbitrary code."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


def malicious_bytes(marker):
    """A pickle (protocol 2) whose loading would create the file ``marker``."""
    return pickle.dumps({'state_dict': _CreateFile(str(marker)), 'meta': {'iter': 1}}, protocol=2)


@contextlib.contextmanager
def serve(payload, name='evil.pth'):
    """Serve ``payload`` at ``http://127.0.0.1:<free port>/<name>`` from a thread.

    Yields an object with ``url`` and ``requests`` (the paths asked for).
    """
    requests = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802  (http.server's name)
            requests.append(self.path)
            self.send_response(200)
            self.send_header('Content-Length', str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    info = type('Served', (), {})()
    info.url = f'http://127.0.0.1:{server.server_address[1]}/{name}'
    info.requests = requests
    try:
        yield info
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
