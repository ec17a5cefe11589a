"""A real SOCKS5 server on 127.0.0.1:<ephemeral> (RFC 1928, CONNECT only) with RFC 1929
username/password authentication, for `proxy-url: socks5://user:pass@…` tests.

It records every CONNECT (target, address type) and the local address of the outbound socket it
opened for it, so a test can check that each connection an upstream fake accepted came through
here: the fake sees the peer address `outbound` lists.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from dataclasses import dataclass
from typing import Self

VERSION = 5
USER_PASS = 2
NO_ACCEPTABLE = 0xFF
CONNECT = 1
ATYP_IPV4, ATYP_DOMAIN, ATYP_IPV6 = 1, 3, 4
SUCCEEDED, GENERAL_FAILURE, NOT_ALLOWED, REFUSED, CMD_UNSUPPORTED = 0, 1, 2, 5, 7
HANDSHAKE_TIMEOUT = 5.0


@dataclass(frozen=True)
class Connect:
    host: str
    port: int
    atyp: int  # how the client named the target: 1 IPv4, 3 domain name, 4 IPv6
    username: str


class Socks5Server:
    """Use as a context manager; `url(scheme)` gives the proxy-url with the right credentials."""

    def __init__(self, username: str = "sockuser", password: str = "s0cks-pass") -> None:
        self.username, self.password = username, password
        self._lock = threading.Lock()
        self.connects: list[Connect] = []
        self.outbound: list[tuple[str, int]] = []  # local address of each outbound socket
        self.auth_failures = 0
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle
    def __enter__(self) -> Self:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        assert self._sock is not None
        return self._sock.getsockname()[1]

    def url(self, scheme: str = "socks5", password: str | None = None) -> str:
        secret = self.password if password is None else password
        return f"{scheme}://{self.username}:{secret}@127.0.0.1:{self.port}"

    def reset(self) -> None:
        with self._lock:
            self.connects.clear()
            self.outbound.clear()
            self.auth_failures = 0

    # ---- serving
    def _accept(self) -> None:
        assert self._sock is not None
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            client.settimeout(HANDSHAKE_TIMEOUT)
            upstream = self._handshake(client)
        except (OSError, ValueError):
            upstream = None
        if upstream is None:
            client.close()
            return
        client.settimeout(None)
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=pipe, args=(src, dst), daemon=True).start()

    def _handshake(self, client: socket.socket) -> socket.socket | None:
        version, count = _recv_exact(client, 2)
        if version != VERSION:
            raise ValueError(f"not SOCKS5: version {version}")
        methods = _recv_exact(client, count)
        if USER_PASS not in methods:
            client.sendall(bytes([VERSION, NO_ACCEPTABLE]))
            return None
        client.sendall(bytes([VERSION, USER_PASS]))
        # RFC 1929: VER=1 ULEN UNAME PLEN PASSWD
        (sub,) = _recv_exact(client, 1)
        if sub != 1:
            raise ValueError(f"bad auth sub-negotiation version {sub}")
        username = _recv_exact(client, _recv_exact(client, 1)[0]).decode("utf-8", "replace")
        password = _recv_exact(client, _recv_exact(client, 1)[0]).decode("utf-8", "replace")
        if (username, password) != (self.username, self.password):
            with self._lock:
                self.auth_failures += 1
            client.sendall(b"\x01\x01")
            return None
        client.sendall(b"\x01\x00")
        version, command, _, atyp = _recv_exact(client, 4)
        if atyp == ATYP_IPV4:
            host = socket.inet_ntop(socket.AF_INET, _recv_exact(client, 4))
        elif atyp == ATYP_DOMAIN:
            host = _recv_exact(client, _recv_exact(client, 1)[0]).decode("idna")
        elif atyp == ATYP_IPV6:
            host = socket.inet_ntop(socket.AF_INET6, _recv_exact(client, 16))
        else:
            raise ValueError(f"bad address type {atyp}")
        (port,) = struct.unpack("!H", _recv_exact(client, 2))
        if command != CONNECT:
            client.sendall(_reply(CMD_UNSUPPORTED))
            return None
        if host not in ("127.0.0.1", "localhost", "::1"):
            client.sendall(_reply(NOT_ALLOWED))  # loopback only: nothing leaves the machine
            return None
        try:
            upstream = socket.create_connection((host, port), timeout=HANDSHAKE_TIMEOUT)
        except OSError:
            client.sendall(_reply(REFUSED))
            return None
        upstream.settimeout(None)
        with self._lock:
            self.connects.append(Connect(host, port, atyp, username))
            self.outbound.append(upstream.getsockname()[:2])
        client.sendall(_reply(SUCCEEDED, upstream.getsockname()))
        return upstream


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ValueError("connection closed during the SOCKS handshake")
        data += chunk
    return data


def _reply(code: int, bound: tuple[str, int] = ("0.0.0.0", 0)) -> bytes:
    host, port = bound[0], bound[1]
    return bytes([VERSION, code, 0, ATYP_IPV4]) + socket.inet_aton(host) + struct.pack("!H", port)


def pipe(src: socket.socket, dst: socket.socket) -> None:
    """Copy one direction of a tunnel until either side closes, then close both."""
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
