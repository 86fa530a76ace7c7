"""A loopback relay in front of an IMAP server that can stall a fetch half-way.

``FetchCutRelay(host, port, cut_after=n)`` accepts IMAP clients on its own port and
passes bytes both ways. On the first connection it watches the server's replies and,
once the n-th complete ``BODY[] {size}`` FETCH response has been passed on (header,
literal and closing line), it passes nothing more from the server and sets
:attr:`tripped`. The client now holds that message's bytes and waits for the rest
of its FETCH: a test that kills the client at this moment kills it mid-fetch, for
certain. Every later connection is relayed untouched, so the next poll goes through
the same address (the mailbox's identity in the database names host and port).

Usage::

    with FetchCutRelay(dovecot.host, dovecot.port, cut_after=1) as relay:
        ...  # point the client at relay.port; relay.tripped.wait(timeout)
"""

from __future__ import annotations

import re
import socket
import threading

from .lifecycle import StartStop

__all__ = ["FetchCutRelay", "cut_point"]

_BODY_LITERAL = re.compile(rb"BODY\[\] \{(\d+)\}\r\n")


def cut_point(stream: bytes, nth: int) -> int | None:
    """Where the ``nth`` (1-based) complete ``BODY[]`` FETCH response in ``stream`` ends.

    Literals are skipped whole, so a message that quotes ``BODY[] {1}`` in its own
    text is not counted. None while that response has not fully arrived.
    """
    position = 0
    for _ in range(nth):
        match = _BODY_LITERAL.search(stream, position)
        if match is None:
            return None
        position = match.end() + int(match.group(1))
    line_end = stream.find(b"\r\n", position)
    return None if line_end < 0 else line_end + 2


class FetchCutRelay(StartStop):
    """Relay to ``host:port``; stall the first connection after its ``cut_after``-th message."""

    def __init__(self, host: str, port: int, *, cut_after: int) -> None:
        self.upstream = (host, port)
        self.cut_after = cut_after
        self.tripped = threading.Event()
        self._listener: socket.socket | None = None
        self._armed = True
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        assert self._listener is not None, "the relay is not started"
        return int(self._listener.getsockname()[1])

    def start(self) -> FetchCutRelay:
        listener = socket.create_server((self.host, 0))
        self._listener = listener
        threading.Thread(target=self._accept, name="relay-accept", daemon=True).start()
        return self

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _close(sock)

    def _accept(self) -> None:
        listener = self._listener
        while listener is not None:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            upstream = socket.create_connection(self.upstream, timeout=30)
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
                armed, self._armed = self._armed, False
            threading.Thread(target=self._copy, args=(client, upstream), daemon=True).start()
            replies = self._cut if armed else self._copy
            threading.Thread(target=replies, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _copy(source: socket.socket, target: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
            except OSError:
                break
        _close(source)
        _close(target)

    def _cut(self, server: socket.socket, client: socket.socket) -> None:
        seen = bytearray()
        sent = 0
        while True:
            try:
                data = server.recv(65536)
            except OSError:
                return
            if not data:
                _close(client)
                return
            seen += data
            cut = cut_point(bytes(seen), self.cut_after)
            limit = len(seen) if cut is None else cut
            try:
                client.sendall(bytes(seen[sent:limit]))
            except OSError:
                return
            sent = limit
            if cut is not None:
                # Hold the rest: the client waits mid-FETCH until it is killed, and then
                # the copy in the other direction sees its socket close and ends both.
                self.tripped.set()
                return


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
