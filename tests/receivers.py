"""Real HTTP receivers on loopback for webhook tests: they record every request, answer as told.

    with Receiver([Reply(500), Reply(200)]) as receiver:
        target = WebhookTarget("ops", receiver.url("/hook"))
        ...
        requests = await receiver.async_wait_for(2)

Replies are used in arrival order; when they run out, ``default`` answers. A reply can wait
``delay`` seconds or ``hold`` until ``release()`` before answering; ``stop()`` cuts every wait
short, so a test never hangs on its own receiver. ``tls_contexts()`` makes a self-signed
certificate for 127.0.0.1 and the server/client SSL contexts to use it. ``RawReceiver`` is a raw
socket for what an HTTP server library will not do: a 200 whose body never ends, or silence.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["RawReceiver", "Receiver", "RecordedRequest", "Reply", "free_port", "tls_contexts"]


@dataclass(frozen=True)
class Reply:
    """How to answer one request."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0
    hold: bool = False


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received; ``headers`` keys are lower-case, repeated fields joined."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    received_at: float


class Receiver:
    """A threaded HTTP/1.0 server on ``host`` (a loopback address) and a free or given port."""

    def __init__(
        self,
        replies: Iterable[Reply] = (),
        *,
        default: Reply | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"receivers listen on loopback only, not {host}")
        self.host = host
        self._port = port
        self._tls = tls
        self._replies: collections.deque[Reply] = collections.deque(replies)
        self._default = default or Reply()
        self._requests: list[RecordedRequest] = []
        self._changed = threading.Condition()
        self._released = threading.Event()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Self:
        """Listen and serve in a background thread."""
        self._server = _Server((self.host, self._port), _Handler, receiver=self)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Cut every delay and hold short, stop serving, close every socket."""
        self._stopping.set()
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()  # joins the handler threads
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    @property
    def port(self) -> int:
        return self._port

    def url(self, path: str = "/hook") -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://{self.host}:{self._port}{path}"

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._changed:
            return list(self._requests)

    def add_replies(self, *replies: Reply) -> None:
        with self._changed:
            self._replies.extend(replies)

    def release(self) -> None:
        """Let every held reply (now and later) answer."""
        self._released.set()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until ``count`` requests arrived (from a thread other than the client's)."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._requests) >= count, timeout):
                raise AssertionError(
                    f"{len(self._requests)} requests after {timeout} s, not {count}"
                )
            return list(self._requests)

    async def async_wait_for(self, count: int, within: float = 5.0) -> list[RecordedRequest]:
        """Like ``wait_for``, without blocking the event loop the client runs in."""
        deadline = time.monotonic() + within
        while len(got := self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(got)} requests after {within} s, not {count}")
            await asyncio.sleep(0.01)
        return got

    def _record(self, request: RecordedRequest) -> Reply:
        with self._changed:
            self._requests.append(request)
            self._changed.notify_all()
            return self._replies.popleft() if self._replies else self._default

    def _wait(self, reply: Reply) -> None:
        if reply.delay:
            self._stopping.wait(reply.delay)
        if reply.hold:
            self._released.wait()


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() then joins them: no thread outlives the test

    def __init__(self, address: tuple[str, int], handler: Any, *, receiver: Receiver) -> None:
        self.receiver = receiver
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        context = self.receiver._tls
        if context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(10)  # a client that never finishes the handshake cannot hang stop()
        try:
            wrapped = context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # the client refused our certificate: nothing was requested
        with wrapped:
            super().finish_request(wrapped, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (timeout) leaves a broken pipe: not the test's concern


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        receiver = self.server.receiver
        reply = receiver._record(
            RecordedRequest(
                method=self.command,
                path=self.path,
                headers=_merged(self.headers.items()),
                body=body,
                received_at=time.time(),
            )
        )
        receiver._wait(reply)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class RawReceiver:
    """A loopback TCP server for what an HTTP server library will not do, one behaviour for
    every connection: ``"endless"`` reads the request, answers 200 with a Content-Length of a
    terabyte and sends its body a kilobyte at a time until the client leaves; ``"silent"``
    reads the request and never answers. ``connections`` counts them; ``stop()`` ends all."""

    BEHAVIOURS = ("endless", "silent")

    def __init__(self, behaviour: str, host: str = "127.0.0.1") -> None:
        if behaviour not in self.BEHAVIOURS:
            raise ValueError(f"behaviour must be one of {self.BEHAVIOURS}, not {behaviour!r}")
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"receivers listen on loopback only, not {host}")
        self.behaviour = behaviour
        self.host = host
        self.connections = 0
        self._listener = socket.create_server((host, 0))
        self._listener.settimeout(0.05)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Self:
        accepting = threading.Thread(target=self._accept, daemon=True)
        accepting.start()
        self._threads.append(accepting)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopping.set()
        for thread in list(self._threads):
            thread.join(timeout=10)
        self._listener.close()

    def url(self, path: str = "/hook") -> str:
        return f"http://{self.host}:{self._listener.getsockname()[1]}{path}"

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            self.connections += 1
            worker = threading.Thread(target=self._serve, args=(connection,), daemon=True)
            worker.start()
            self._threads.append(worker)

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            connection.settimeout(0.05)
            with contextlib.suppress(OSError):
                self._read_request(connection)
                if self.behaviour == "silent":
                    self._stopping.wait()
                    return
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                    b"Content-Length: 1000000000000\r\n\r\n"
                )
                while not self._stopping.wait(0.01):
                    connection.sendall(b"x" * 1024)

    def _read_request(self, connection: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data and not self._stopping.is_set():
            try:
                chunk = connection.recv(65536)
            except TimeoutError:
                continue
            if not chunk:
                return
            data += chunk


def _merged(fields: Iterable[tuple[str, str]]) -> dict[str, str]:
    # Repeated fields are joined with ", " (RFC 9110 5.3), so a duplicate stays visible.
    headers: dict[str, str] = {}
    for name, value in fields:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (for "connection refused", then start there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def tls_contexts(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts for a fresh self-signed certificate of 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file = directory / "receiver-cert.pem"
    key_file = directory / "receiver-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client
