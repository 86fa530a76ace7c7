"""The IMAP inbox: connect, read UIDVALIDITY, list new UIDs, fetch raw bytes, flag after commit.

imap-tools provides the connection and login; the bulk fetch goes through its
``imaplib`` client with ``UID FETCH (UID INTERNALDATE BODY.PEEK[])`` and is parsed
here once, because imap-tools' own ``fetch`` parses every message and runs about
ten times slower than the server. ``BODY.PEEK`` leaves ``\\Seen`` alone: staff may
read the same inbox in their mail client.
"""

from __future__ import annotations

import datetime as dt
import imaplib
import re
import socket
import ssl
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from imap_tools import MailBox, MailBoxUnencrypted
from imap_tools.errors import MailboxLoginError

from parsers.result import MB

from ..config import ImapSettings, OAuth2Settings
from ..errors import ConfigError, MailboxAuthError, MailboxError
from .message import FetchedMail, MailKey

if TYPE_CHECKING:
    from .oauth import TokenSources  # imported when first used: it loads cryptography

__all__ = ["MAX_BATCH_BYTES", "ImapInbox", "imap_name", "uid_set"]

# Fetch at most this many bytes of messages in one UID FETCH, whatever batch_size says,
# so memory stays bounded when a batch holds several large attachments.
MAX_BATCH_BYTES = 32 * MB
_NETWORK_ERRORS = (imaplib.IMAP4.error, OSError, EOFError, ssl.SSLError, socket.timeout)
_UID = re.compile(rb"UID (\d+)")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]+)"')


def imap_name(settings: ImapSettings) -> str:
    """How an IMAP folder is named in the database: user, host, port and folder."""
    s = settings
    return f"imap://{s.username}@{s.host}:{s.effective_port}/{s.folder}"


def uid_set(uids: Iterable[int]) -> str:
    """Compress UIDs into an IMAP sequence set: ``[1, 2, 3, 7]`` -> ``"1:3,7"``."""
    ordered = sorted(set(uids))
    ranges: list[str] = []
    start = prev = None
    for uid in ordered:
        if start is None:
            start = prev = uid
        elif prev is not None and uid == prev + 1:
            prev = uid
        else:
            ranges.append(f"{start}:{prev}" if start != prev else str(start))
            start = prev = uid
    if start is not None:
        ranges.append(f"{start}:{prev}" if start != prev else str(start))
    return ",".join(ranges)


def _parse_internaldate(value: bytes) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(
            value.decode("ascii").strip(), "%d-%b-%Y %H:%M:%S %z"
        ).astimezone(dt.UTC)
    except (UnicodeDecodeError, ValueError):
        return None


def _fetch_items(data: list[object]) -> Iterator[tuple[bytes, bytes | None]]:
    """Pair each FETCH response's metadata with its literal from imaplib's flat list."""
    pending: tuple[bytes, bytes] | None = None
    for item in data:
        if isinstance(item, tuple) and len(item) == 2:
            if pending is not None:
                yield pending
            pending = (bytes(item[0]), bytes(item[1]))
        elif isinstance(item, bytes):
            if pending is not None:
                # The closing ")" may carry attributes sent after the literal (e.g. UID).
                yield pending[0] + b" " + item, pending[1]
                pending = None
            elif item.strip():
                yield item, None
    if pending is not None:
        yield pending


class ImapInbox:
    """One connection to the consultation's IMAP folder.

    Use as a context manager. Every network or protocol error surfaces as
    :class:`MailboxError` (or :class:`MailboxAuthError` for refused credentials).
    """

    def __init__(
        self,
        settings: ImapSettings,
        *,
        max_message_bytes: int,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        tokens: TokenSources | None = None,
    ) -> None:
        self.settings = settings
        # Where an OAuth2 access token comes from: the App's, shared with SMTP and kept
        # across connections; a private one when none is given.
        self.tokens = tokens
        self.max_message_bytes = max_message_bytes
        self.now = now
        self._box: MailBox | MailBoxUnencrypted | None = None
        self.uidvalidity = 0
        self.unfetched: list[int] = []

    @property
    def name(self) -> str:
        """The mailbox's identity in the database (host, user and folder)."""
        return imap_name(self.settings)

    # --- connection ------------------------------------------------------------------

    def __enter__(self) -> ImapInbox:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        s = self.settings
        where = f"{s.host}:{s.effective_port}"
        try:
            if s.security == "ssl":
                box: MailBox | MailBoxUnencrypted = MailBox(
                    s.host,
                    s.effective_port,
                    timeout=s.timeout_s,
                    ssl_context=ssl.create_default_context(),
                )
            else:
                box = MailBoxUnencrypted(s.host, s.effective_port, timeout=s.timeout_s)
        except _NETWORK_ERRORS as exc:
            raise MailboxError(f"cannot connect to the IMAP server {where}: {exc}") from exc
        self._box = box
        if s.security == "starttls":
            # Upgraded here rather than by MailBoxStartTls, so a server without STARTTLS
            # is an error we can clean up after; there is never a plain-text fallback.
            try:
                box.client.starttls(ssl_context=ssl.create_default_context())
            except _NETWORK_ERRORS as exc:
                self.close()
                raise MailboxError(
                    f"the IMAP server {where} did not start TLS ({exc}); check imap.security"
                ) from exc
        try:
            s.require_secrets()  # an unset variable is named as such, not as a refused login
        except ConfigError as exc:
            self.close()
            raise MailboxAuthError(str(exc)) from exc
        try:
            if s.auth == "oauth2" and s.oauth2 is not None:
                self._xoauth2(box, s.oauth2, where)
            else:
                box.login(s.username, s.password, initial_folder=None)
            # Servers announce MOVE and friends only after login.
            typ, caps = box.client.capability()
            if typ == "OK" and caps and isinstance(caps[-1], bytes):
                box.client.capabilities = tuple(caps[-1].decode().upper().split())
            self.uidvalidity = self._select(s.folder)
        except MailboxAuthError:
            self.close()
            raise
        except MailboxLoginError as exc:
            self.close()
            from .oauth import login_refused  # it explains a refused password as well

            raise MailboxAuthError(login_refused("imap", s, where, str(exc))) from exc
        except _NETWORK_ERRORS as exc:
            self.close()
            raise MailboxError(f"IMAP error on {where}: {exc}") from exc

    def _xoauth2(self, box: MailBox | MailBoxUnencrypted, o: OAuth2Settings, where: str) -> None:
        """Sign in with an OAuth2 access token (auth = "oauth2"; only then is OAuth2 loaded)."""
        from . import oauth

        s = self.settings
        try:
            if self.tokens is None:
                self.tokens = oauth.TokenSources()
            source = self.tokens.source_for(o)
            token = source.access_token()
        except oauth.TokenError as exc:
            raise MailboxAuthError(f"cannot sign in to the IMAP server {where}: {exc}") from exc
        try:
            box.xoauth2(s.username, token, initial_folder=None)
        except imaplib.IMAP4.abort:
            raise
        except (MailboxLoginError, imaplib.IMAP4.error) as exc:
            source.invalidate()  # the next attempt asks for a new token
            raise MailboxAuthError(oauth.login_refused("imap", s, where, str(exc))) from exc

    def close(self) -> None:
        box, self._box = self._box, None
        if box is None:
            return
        try:
            box.logout()
        except Exception:  # noqa: BLE001, S110 - the connection is going away anyway
            try:
                box.client.shutdown()
            except Exception:  # noqa: BLE001, S110
                pass

    @property
    def client(self) -> imaplib.IMAP4:
        if self._box is None:
            raise MailboxError("not connected to the IMAP server")
        return self._box.client

    def _select(self, folder: str) -> int:
        typ, data = self.client.select(self._quote(folder))
        if typ != "OK":
            raise MailboxError(f"cannot open the folder {folder!r}: {data!r}; check imap.folder")
        _, values = self.client.response("UIDVALIDITY")
        if not values or values[0] is None:
            raise MailboxError(f"the server sent no UIDVALIDITY for {folder!r}")
        return int(values[-1])

    @staticmethod
    def _quote(folder: str) -> str:
        return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'

    def _command(self, *args: str) -> list[object]:
        try:
            typ, data = self.client.uid(*args)
        except _NETWORK_ERRORS as exc:
            raise MailboxError(f"IMAP {args[0]} failed: {exc}") from exc
        if typ != "OK":
            raise MailboxError(f"IMAP {args[0]} was refused: {data!r}")
        return list(data)

    # --- reading ---------------------------------------------------------------------

    def search(self, criteria: str) -> list[int]:
        data = self._command("SEARCH", criteria)
        uids: list[int] = []
        for line in data:
            if isinstance(line, bytes):
                uids.extend(int(token) for token in line.split() if token.isdigit())
        return sorted(uids)

    def uids_after(self, watermark: int) -> list[int]:
        """UIDs above ``watermark`` (``n:*`` also returns the highest UID, so filter)."""
        return [uid for uid in self.search(f"UID {watermark + 1}:*") if uid > watermark]

    def sizes(self, uids: list[int]) -> dict[int, int]:
        sizes: dict[int, int] = {}
        for meta, _ in _fetch_items(self._command("FETCH", uid_set(uids), "(UID RFC822.SIZE)")):
            uid, size = _UID.search(meta), _SIZE.search(meta)
            if uid and size:
                sizes[int(uid.group(1))] = int(size.group(1))
        return sizes

    def fetch(self, uids: list[int], batch_size: int | None = None) -> Iterator[FetchedMail]:
        """Fetch the raw bytes of ``uids`` in ascending order, in bounded batches.

        A message over the size limit yields only its header, with ``oversize=True``.
        """
        batch_size = batch_size or self.settings.batch_size
        for start in range(0, len(uids), batch_size):
            chunk = sorted(uids[start : start + batch_size])
            sizes = self.sizes(chunk)
            group: list[int] = []
            group_bytes = 0
            for uid in chunk:
                size = sizes.get(uid, 0)
                if size > self.max_message_bytes:
                    yield from self._fetch_group(group, sizes)
                    group, group_bytes = [], 0
                    yield from self._fetch_group([uid], sizes, header_only=True)
                    continue
                if group and group_bytes + size > MAX_BATCH_BYTES:
                    yield from self._fetch_group(group, sizes)
                    group, group_bytes = [], 0
                group.append(uid)
                group_bytes += size
            yield from self._fetch_group(group, sizes)

    def _fetch_group(
        self, uids: list[int], sizes: dict[int, int], *, header_only: bool = False
    ) -> Iterator[FetchedMail]:
        if not uids:
            return
        found = self._fetch_raw(uids, sizes, header_only)
        missing = [uid for uid in uids if uid not in found]
        if len(uids) > 1:
            # A server may leave a UID out of a multi-message reply: ask for each alone.
            for uid in missing:
                found.update(self._fetch_raw([uid], sizes, header_only))
        # Still absent: said before any later UID is yielded, so that the caller records
        # the gap before its watermark can pass it.
        self.unfetched.extend(uid for uid in missing if uid not in found)
        for uid in sorted(found):
            yield found[uid]

    def _fetch_raw(
        self, uids: list[int], sizes: dict[int, int], header_only: bool
    ) -> dict[int, FetchedMail]:
        part = "BODY.PEEK[HEADER]" if header_only else "BODY.PEEK[]"
        data = self._command("FETCH", uid_set(uids), f"(UID INTERNALDATE {part})")
        fetched_at = self.now()
        found: dict[int, FetchedMail] = {}
        for meta, literal in _fetch_items(data):
            uid_match = _UID.search(meta)
            if literal is None or uid_match is None:
                continue  # an unsolicited FLAGS update, not our data
            uid = int(uid_match.group(1))
            date_match = _INTERNALDATE.search(meta)
            found[uid] = FetchedMail(
                raw=literal,
                fetched_at=fetched_at,
                key=MailKey(self.name, self.uidvalidity, uid),
                internal_date=_parse_internaldate(date_match.group(1)) if date_match else None,
                oversize=header_only,
                size=sizes.get(uid, len(literal)),
            )
        return found

    def take_unfetched(self) -> list[int]:
        """UIDs the server listed but did not return, even alone, since the last call."""
        taken, self.unfetched = self.unfetched, []
        return taken

    # --- marking ---------------------------------------------------------------------

    def mark_stored(self, uids: list[int]) -> None:
        """Flag (or move) messages whose storage is committed. Safe to repeat."""
        if not uids:
            return
        target = self.settings.processed_folder
        if not target:
            self._command(
                "STORE", uid_set(uids), "+FLAGS.SILENT", f"({self.settings.stored_keyword})"
            )
            return
        caps = {str(cap).upper() for cap in self.client.capabilities}
        if "MOVE" in caps:
            self._command("MOVE", uid_set(uids), self._quote(target))
            return
        self._command("COPY", uid_set(uids), self._quote(target))
        self._command("STORE", uid_set(uids), "+FLAGS.SILENT", r"(\Deleted)")
        if "UIDPLUS" in caps:
            self._command("EXPUNGE", uid_set(uids))
        else:
            try:
                self.client.expunge()
            except _NETWORK_ERRORS as exc:
                raise MailboxError(f"IMAP EXPUNGE failed: {exc}") from exc

    def wait_for_news(self, timeout: float) -> bool:
        """IMAP IDLE for up to ``timeout`` seconds; True when the server announced mail."""
        if self._box is None:
            raise MailboxError("not connected to the IMAP server")
        try:
            responses = self._box.idle.wait(timeout=int(max(1, timeout)))
        except _NETWORK_ERRORS as exc:
            raise MailboxError(f"IMAP IDLE failed: {exc}") from exc
        return any(b"EXISTS" in line or b"RECENT" in line for line in responses)

    def noop(self) -> None:
        try:
            self.client.noop()
        except _NETWORK_ERRORS as exc:
            raise MailboxError(f"IMAP NOOP failed: {exc}") from exc
