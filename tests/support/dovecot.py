"""A private, throw-away Dovecot 2.3 IMAP server for tests.

:class:`Dovecot` writes its own configuration into a fresh temporary directory,
runs ``dovecot -F -c <conf>`` in the foreground as a child process in its own
session (so the master and all its children form one process group), listens on
``127.0.0.1`` on a free, non-standard port and authenticates one test user from a
``passwd-file``.  Mail is stored as Maildir under :attr:`Dovecot.maildir_root`.

Notes for code that talks to this server (and is tested against it):

* Plain-text LOGIN/AUTHENTICATE PLAIN is allowed without TLS (``ssl = no``).
* The pre-login CAPABILITY list does not contain ``MOVE``/``UIDPLUS``; Dovecot sends
  the full list in the LOGIN response code.  Clients must refresh their
  capabilities after login (imap_tools does: it calls CAPABILITY again) before
  deciding whether to use ``UID MOVE``.
* Messages delivered by another process (:meth:`Dovecot.deliver`, another
  connection) become visible to an already-selected session only after it sends a
  command such as ``NOOP`` (or re-selects); send NOOP before ``UID SEARCH``.
* Custom keywords such as ``$IntakeStored`` can be stored (Maildir keeps up to 26
  keywords per mailbox in ``dovecot-keywords``); the mailbox advertises
  ``\\*`` in PERMANENTFLAGS.
* Folders use ``/`` as the hierarchy separator (e.g. ``Intake/Stored``).
* INTERNALDATE is kept as the Maildir file's mtime, i.e. only the instant: a
  message appended with ``10:00:00 +0100`` is reported as ``09:00:00 +0000``
  (the server runs with ``TZ=UTC``).  Compare aware datetimes, not strings.

Typical pytest usage::

    @pytest.fixture(scope="session")
    def dovecot() -> Iterator[Dovecot]:
        with Dovecot() as server:          # start() + wait_ready(); close() at exit
            yield server

    @pytest.fixture
    def mailbox(dovecot: Dovecot) -> Dovecot:
        dovecot.clear()                    # empty every folder between tests
        return dovecot
"""

from __future__ import annotations

import base64
import contextlib
import grp
import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = [
    "Dovecot",
    "DovecotError",
    "StoredMessage",
    "dovecot_available",
    "find_dovecot",
    "find_dovecot_lda",
    "free_port",
    "imap_quote",
]

HOST = "127.0.0.1"

_LDA_CANDIDATES = ("/usr/lib/dovecot/dovecot-lda", "/usr/libexec/dovecot/dovecot-lda")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class DovecotError(RuntimeError):
    """Raised when the test Dovecot cannot be started or a helper command fails."""


@dataclass(frozen=True)
class StoredMessage:
    """One message as read back from the server by :meth:`Dovecot.messages`."""

    uid: int
    flags: frozenset[str]
    internaldate: datetime
    raw: bytes = field(repr=False)


def find_dovecot() -> str | None:
    """Return the path of the ``dovecot`` master binary, or ``None``."""
    return shutil.which("dovecot") or shutil.which("dovecot", path="/usr/sbin:/sbin")


def find_dovecot_lda() -> str | None:
    """Return the path of ``dovecot-lda``, or ``None``."""
    for candidate in _LDA_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("dovecot-lda")


def dovecot_available() -> bool:
    """True when a Dovecot binary is installed (use with ``pytest.mark.skipif``)."""
    return find_dovecot() is not None


def free_port(host: str = HOST) -> int:
    """Return a TCP port on *host* that is free right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def imap_quote(name: str) -> str:
    """Quote a mailbox name for an IMAP command (modified UTF-7 for non-ASCII)."""
    encoded = _utf7_encode(name)
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _utf7_encode(name: str) -> str:
    """Encode *name* in IMAP's modified UTF-7 (RFC 3501 section 5.1.3)."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            data = "".join(pending).encode("utf-16-be")
            out.append(
                "&" + base64.b64encode(data).decode("ascii").rstrip("=").replace("/", ",") + "-"
            )
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


def _utf7_decode(name: str) -> str:
    """Decode a modified UTF-7 mailbox name."""

    def repl(match: re.Match[str]) -> str:
        chunk = match.group(1)
        if not chunk:
            return "&"
        chunk = chunk.replace(",", "/")
        chunk += "=" * (-len(chunk) % 4)
        return base64.b64decode(chunk).decode("utf-16-be")

    return re.sub(r"&([^-]*)-", repl, name)


def _parse_internaldate(value: str) -> datetime:
    """Parse an IMAP ``date-time`` such as ``" 5-Mar-2024 10:00:00 +0100"``."""
    match = re.fullmatch(
        r"\s*(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})\s*", value
    )
    if not match:
        raise ValueError(f"not an IMAP date-time: {value!r}")
    day, mon, year, hh, mm, ss, sign, oh, om = match.groups()
    offset = timedelta(hours=int(oh), minutes=int(om))
    if sign == "-":
        offset = -offset
    return datetime(
        int(year),
        _MONTHS.index(mon.capitalize()) + 1,
        int(day),
        int(hh),
        int(mm),
        int(ss),
        tzinfo=timezone(offset),
    )


def _kill_group(pgid: int) -> None:
    """SIGKILL a process group that may already be gone (used by a finalizer)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _check(result: tuple[str, Sequence[Any]], what: str) -> list[Any]:
    """Return the data of an imaplib ``(typ, data)`` result, raising unless typ is OK."""
    typ, data = result
    if typ != "OK":
        raise DovecotError(f"{what} failed: {typ} {data!r}")
    return list(data)


class Dovecot:
    """A private Dovecot 2.3 IMAP server on ``127.0.0.1:<free port>``.

    Args:
        user: login name of the single test user.
        password: that user's password (stored in PLAIN scheme; no ``:``).
        port: TCP port; a free one is chosen when omitted.  It stays the same
            across :meth:`stop`/:meth:`start`/:meth:`restart`/:meth:`kill`.
        root: directory for config, runtime files and mail; a new
            ``/tmp/intake-dovecot-*`` directory (mode 0755) when omitted.  It must be
            traversable by the ``dovecot`` user when running as root.
        startup_timeout: seconds :meth:`wait_ready` waits for the IMAP greeting.
        oauth2_token: when given, also offer ``AUTHENTICATE XOAUTH2`` and ``OAUTHBEARER``
            and accept this bearer token for :attr:`user` (checked as the password
            of a second passwd-file passdb that serves only those mechanisms); the
            password keeps working for LOGIN and PLAIN.

    ``start()`` returns ``self`` so fixtures can write ``server = Dovecot().start()``;
    the instance is also a context manager (start on enter, :meth:`close` on exit).
    """

    def __init__(
        self,
        *,
        user: str = "consultation",
        password: str = "s3cret-test-pass",
        port: int | None = None,
        root: str | os.PathLike[str] | None = None,
        startup_timeout: float = 20.0,
        oauth2_token: str | None = None,
    ) -> None:
        if ":" in user or ":" in password or "\n" in user + password:
            raise ValueError("user and password must not contain ':' or newlines")
        if oauth2_token is not None and (":" in oauth2_token or "\n" in oauth2_token):
            raise ValueError("oauth2_token must not contain ':' or newlines")
        self._oauth2_token = oauth2_token
        binary = find_dovecot()
        if binary is None:
            raise DovecotError("dovecot binary not found (apt-get install dovecot-imapd)")
        self._binary = binary
        self._user = user
        self._password = password
        self._port = port if port is not None else free_port()
        self._startup_timeout = startup_timeout
        self._owns_root = root is None
        self._root = (
            Path(root)
            if root is not None
            else Path(tempfile.mkdtemp(prefix="intake-dovecot-", dir="/tmp"))
        )
        self._proc: subprocess.Popen[bytes] | None = None
        self._pgid: int | None = None
        # Safety nets for sessions that never call close(): at interpreter exit the
        # server's process group is killed (registered later, so it runs first) and
        # the temporary directory removed.
        self._group_finalizer: weakref.finalize[[int], Dovecot] | None = None
        if self._owns_root:
            weakref.finalize(self, shutil.rmtree, str(self._root), True)

        if os.geteuid() == 0:
            account = pwd.getpwnam("dovecot")
            self._service_user = account.pw_name
            self._service_group = grp.getgrgid(account.pw_gid).gr_name
            self._mail_uid, self._mail_gid = account.pw_uid, account.pw_gid
        else:
            account = pwd.getpwuid(os.getuid())
            self._service_user = account.pw_name
            self._service_group = grp.getgrgid(os.getgid()).gr_name
            self._mail_uid, self._mail_gid = os.getuid(), os.getgid()
        self._write_files()

    # ------------------------------------------------------------------ properties

    @property
    def host(self) -> str:
        """Always ``127.0.0.1``."""
        return HOST

    @property
    def port(self) -> int:
        """The IMAP (plain, no TLS) port."""
        return self._port

    @property
    def user(self) -> str:
        """The test user's login name."""
        return self._user

    @property
    def password(self) -> str:
        """The test user's password."""
        return self._password

    @property
    def root(self) -> Path:
        """The temporary directory holding config, runtime files, log and mail."""
        return self._root

    @property
    def home(self) -> Path:
        """The test user's home directory."""
        return self._root / "home" / self._user

    @property
    def maildir_root(self) -> Path:
        """The user's Maildir (INBOX is ``cur/new/tmp`` here, folders are ``.Name``)."""
        return self.home / "Maildir"

    @property
    def config_path(self) -> Path:
        """The generated ``dovecot.conf``."""
        return self._root / "dovecot.conf"

    @property
    def log_path(self) -> Path:
        """Dovecot's log file (errors, info and login lines)."""
        return self._root / "dovecot.log"

    @property
    def pid(self) -> int | None:
        """PID of the running Dovecot master, or ``None`` when stopped."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    @property
    def running(self) -> bool:
        """True while the master process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def log_text(self) -> str:
        """Return Dovecot's log so far (for assertion messages)."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # ------------------------------------------------------------------ files

    def _write_files(self) -> None:
        root = self._root
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        for sub in ("run", "state"):
            (root / sub).mkdir(exist_ok=True)
        (root / "home").mkdir(exist_ok=True)
        (root / "home").chmod(0o755)
        self.home.mkdir(exist_ok=True)
        self.home.chmod(0o700)
        if os.geteuid() == 0:
            os.chown(self.home, self._mail_uid, self._mail_gid)

        passwd = root / "passwd"
        passwd.write_text(
            f"{self._user}:{{PLAIN}}{self._password}:{self._mail_uid}:{self._mail_gid}"
            f"::{self.home}::\n"
        )
        passwd.chmod(0o644)
        if self._oauth2_token is not None:
            tokens = root / "oauth2-tokens"
            tokens.write_text(
                f"{self._user}:{{PLAIN}}{self._oauth2_token}:{self._mail_uid}:{self._mail_gid}"
                f"::{self.home}::\n"
            )
            tokens.chmod(0o644)
        self.log_path.touch()
        # dovecot-lda drops to the mail uid before it writes to the log.
        self.log_path.chmod(0o666)
        self.config_path.write_text(self._config_text())
        self.config_path.chmod(0o644)

    def _config_text(self) -> str:
        root = self._root
        mechanisms = "plain login"
        oauth2_passdb = ""
        if self._oauth2_token is not None:
            mechanisms = "plain login xoauth2 oauthbearer"
            oauth2_passdb = f"""
passdb {{
  driver = passwd-file
  mechanisms = xoauth2 oauthbearer
  args = scheme=PLAIN username_format=%u {root / "oauth2-tokens"}
}}"""
        return f"""\
# Generated by tests/support/dovecot.py -- a private test server.
protocols = imap
listen = {HOST}
base_dir = {root / "run"}
state_dir = {root / "state"}
log_path = {self.log_path}
info_log_path = {self.log_path}
instance_name = intake-test-{self._port}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
auth_failure_delay = 0
auth_cache_size = 0
first_valid_uid = 1
first_valid_gid = 1
default_login_user = {self._service_user}
default_internal_user = {self._service_user}
default_internal_group = {self._service_group}
mail_location = maildir:~/Maildir
login_greeting = Dovecot (intake test server) ready.
postmaster_address = postmaster@localhost
lda_mailbox_autocreate = yes
lda_mailbox_autosubscribe = yes
shutdown_clients = yes

namespace inbox {{
  inbox = yes
  separator = /
  prefix =
}}

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root / "passwd"}
}}{oauth2_passdb}
userdb {{
  driver = passwd-file
  args = username_format=%u {root / "passwd"}
}}

service imap-login {{
  chroot =
  inet_listener imap {{
    address = {HOST}
    port = {self._port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
  # auth disables its per-IP "auth penalty" (2..15 s delays for every login after a
  # failed one) when it can't find this socket -- tests log in with wrong passwords.
  unix_listener anvil-auth-penalty {{
    path = anvil-auth-penalty-disabled
  }}
}}

protocol imap {{
  mail_max_userip_connections = 200
}}
"""

    # ------------------------------------------------------------------ lifecycle

    def _env(self) -> dict[str, str]:
        return {
            "TZ": "UTC",
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "LANG": "C.UTF-8",
        }

    def start(self) -> Dovecot:
        """Start the server (no-op if running) and wait until it greets; returns self."""
        if self.running:
            return self
        self._wait_group_gone(timeout=10.0)
        self._proc = subprocess.Popen(
            [self._binary, "-F", "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            env=self._env(),
            cwd=self._root,
        )
        self._pgid = self._proc.pid
        self._group_finalizer = weakref.finalize(self, _kill_group, self._pgid)
        try:
            self.wait_ready()
        except BaseException:
            self.kill()
            raise
        return self

    def wait_ready(self, timeout: float | None = None) -> None:
        """Poll until the server sends its ``* OK`` greeting on :attr:`port`."""
        deadline = time.monotonic() + (self._startup_timeout if timeout is None else timeout)
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                code = None if self._proc is None else self._proc.returncode
                raise DovecotError(
                    f"dovecot exited (status {code}) before it was ready; log:\n{self.log_text()}"
                )
            try:
                with socket.create_connection((HOST, self._port), timeout=2) as sock:
                    greeting = sock.makefile("rb").readline()
                if greeting.startswith(b"* OK"):
                    return
                last_error = DovecotError(f"unexpected greeting {greeting!r}")
            except OSError as exc:
                last_error = exc
            time.sleep(0.02)
        raise DovecotError(
            f"dovecot not ready on {HOST}:{self._port} after waiting ({last_error}); "
            f"log:\n{self.log_text()}"
        )

    def stop(self, timeout: float = 15.0) -> None:
        """Shut the server down gracefully (SIGTERM to the master) and wait for it."""
        proc = self._proc
        if proc is not None and proc.poll() is None and self._pgid is not None:
            # SIGTERM to the whole group: the master alone waits ~1 s for its children.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._pgid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        self._reap()
        self._wait_group_gone(timeout=timeout)

    def kill(self) -> None:
        """Simulate a crash: SIGKILL the master and every process in its group."""
        if self._pgid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._pgid, signal.SIGKILL)
        self._reap()
        self._wait_group_gone(timeout=10.0)

    def restart(self) -> Dovecot:
        """Graceful :meth:`stop` followed by :meth:`start`; returns self."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the server and delete the temporary directory (if we created it)."""
        try:
            self.stop()
        finally:
            if self._owns_root:
                shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _reap(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=10)

    def _group_members(self) -> list[int]:
        """Live (non-zombie) processes still in the server's process group."""
        if self._pgid is None:
            return []
        members: list[int] = []
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as fh:
                    stat = fh.read()
            except OSError:
                continue
            # Fields after the ")" closing the command name: state ppid pgrp ...
            fields = stat[stat.rfind(b")") + 2 :].split()
            if len(fields) >= 3 and int(fields[2]) == self._pgid and fields[0] != b"Z":
                members.append(int(entry.name))
        return members

    def _wait_group_gone(self, timeout: float) -> None:
        """Wait until the old master's children have exited (they hold the port)."""
        if self._pgid is None:
            return
        deadline = time.monotonic() + timeout
        while self._group_members():
            if time.monotonic() > deadline:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self._pgid, signal.SIGKILL)
                deadline = time.monotonic() + timeout
            time.sleep(0.02)
        if self._group_finalizer is not None:
            self._group_finalizer.detach()
            self._group_finalizer = None
        self._pgid = None
        self._proc = None

    # ------------------------------------------------------------------ IMAP helpers

    @contextlib.contextmanager
    def client(self, *, login: bool = True, timeout: float = 15.0) -> Iterator[imaplib.IMAP4]:
        """An ``imaplib.IMAP4`` connection (logged in by default), logged out on exit."""
        conn = imaplib.IMAP4(HOST, self._port, timeout=timeout)
        try:
            if login:
                conn.login(self._user, self._password)
            yield conn
        finally:
            conn.logout()  # always closes the socket, even after errors

    def append(
        self,
        raw: bytes,
        internaldate: datetime | None = None,
        folder: str = "INBOX",
        flags: Iterable[str] = (),
    ) -> int:
        """APPEND *raw* to *folder* and return its UID (from the APPENDUID response).

        *internaldate* may be naive (taken as UTC).  The folder is created if missing.
        """
        if internaldate is not None and internaldate.tzinfo is None:
            internaldate = internaldate.replace(tzinfo=UTC)
        flag_list = " ".join(flags)
        with self.client() as conn:
            for attempt in range(2):
                typ, data = conn.append(
                    imap_quote(folder),
                    f"({flag_list})" if flag_list else None,
                    internaldate,
                    raw,
                )
                text = b" ".join(d for d in data if isinstance(d, bytes))
                if typ == "OK":
                    match = re.search(rb"\[APPENDUID \d+ (\d+)\]", text)
                    if not match:
                        raise DovecotError(f"APPEND gave no APPENDUID: {text!r}")
                    return int(match.group(1))
                if attempt == 0 and b"[TRYCREATE]" in text:
                    _check(conn.create(imap_quote(folder)), f"CREATE {folder}")
                    continue
                raise DovecotError(f"APPEND to {folder} failed: {typ} {text!r}")
        raise AssertionError("unreachable")

    def deliver(
        self, raw: bytes, folder: str = "INBOX", *, envelope_from: str | None = None
    ) -> None:
        """Deliver *raw* with ``dovecot-lda`` (as an MTA would), into *folder*.

        Needs the server running (the LDA asks its auth process for the user).
        """
        lda = find_dovecot_lda()
        if lda is None:
            raise DovecotError("dovecot-lda not found")
        cmd = [lda, "-c", str(self.config_path), "-d", self._user, "-e"]
        if folder != "INBOX":
            cmd += ["-m", folder]
        if envelope_from is not None:
            cmd += ["-f", envelope_from]
        result = subprocess.run(
            cmd,
            input=raw,
            capture_output=True,
            env=self._env(),
            cwd=self._root,
            timeout=60,
            check=False,
        )
        if result.returncode != 0:
            raise DovecotError(
                f"dovecot-lda exited {result.returncode}: "
                f"{result.stderr.decode(errors='replace')}\n{self.log_text()[-4000:]}"
            )

    def create_folder(self, name: str, *, exist_ok: bool = True) -> None:
        """CREATE (and SUBSCRIBE) folder *name*; ``/`` separates hierarchy levels."""
        with self.client() as conn:
            typ, data = conn.create(imap_quote(name))
            if typ != "OK" and not (exist_ok and b"[ALREADYEXISTS]" in b" ".join(data)):
                raise DovecotError(f"CREATE {name} failed: {typ} {data!r}")
            conn.subscribe(imap_quote(name))

    def folders(self) -> list[str]:
        """Names of all folders (decoded from modified UTF-7)."""
        with self.client() as conn:
            return self._list(conn)

    @staticmethod
    def _list(conn: imaplib.IMAP4) -> list[str]:
        data = _check(conn.list('""', "*"), "LIST")
        names: list[str] = []
        for line in data:
            if not isinstance(line, bytes):
                continue
            match = re.match(rb'\(([^)]*)\) (?:"[^"]*"|NIL) (.*)$', line)
            if not match:
                continue
            name = match.group(2).decode()
            if name.startswith('"'):
                name = name[1:-1].replace('\\"', '"').replace("\\\\", "\\")
            names.append(_utf7_decode(name))
        return names

    def uids(self, folder: str = "INBOX") -> list[int]:
        """UIDs of all messages in *folder*, ascending."""
        with self.client() as conn:
            _check(conn.select(imap_quote(folder), readonly=True), f"EXAMINE {folder}")
            data = _check(conn.uid("SEARCH", "ALL"), "UID SEARCH")
            first = data[0] if data and isinstance(data[0], bytes) else b""
            return sorted(int(n) for n in first.split())

    def flags(self, folder: str, uid: int) -> set[str]:
        """Flags and keywords of message *uid* in *folder* (``\\Recent`` omitted)."""
        with self.client() as conn:
            _check(conn.select(imap_quote(folder), readonly=True), f"EXAMINE {folder}")
            data = _check(conn.uid("FETCH", str(uid), "(FLAGS)"), "UID FETCH FLAGS")
            for item in data:
                if isinstance(item, bytes):
                    match = re.search(rb"FLAGS \(([^)]*)\)", item)
                    if match:
                        return {f for f in match.group(1).decode().split() if f != "\\Recent"}
        raise DovecotError(f"no message with UID {uid} in {folder}")

    def uidvalidity(self, folder: str = "INBOX") -> int:
        """UIDVALIDITY of *folder* (via STATUS)."""
        with self.client() as conn:
            data = _check(conn.status(imap_quote(folder), "(UIDVALIDITY)"), "STATUS")
        match = re.search(rb"UIDVALIDITY (\d+)", b" ".join(d for d in data if isinstance(d, bytes)))
        if not match:
            raise DovecotError(f"STATUS gave no UIDVALIDITY: {data!r}")
        return int(match.group(1))

    def messages(self, folder: str = "INBOX") -> list[StoredMessage]:
        """All messages in *folder* with UID, flags, INTERNALDATE and raw bytes.

        Uses ``BODY.PEEK[]`` on a read-only selection, so nothing gets ``\\Seen``.
        """
        with self.client() as conn:
            typ, sel = conn.select(imap_quote(folder), readonly=True)
            if typ != "OK":
                raise DovecotError(f"EXAMINE {folder} failed: {sel!r}")
            if sel and sel[0] == b"0":
                return []
            data = _check(
                conn.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE BODY.PEEK[])"), "UID FETCH"
            )
        result: list[StoredMessage] = []
        for item in data:
            if not isinstance(item, tuple):
                continue
            head, body = item
            uid = re.search(rb"UID (\d+)", head)
            flags = re.search(rb"FLAGS \(([^)]*)\)", head)
            date = re.search(rb'INTERNALDATE "([^"]+)"', head)
            if not (uid and flags and date):
                raise DovecotError(f"unexpected FETCH response {head!r}")
            result.append(
                StoredMessage(
                    uid=int(uid.group(1)),
                    flags=frozenset(f for f in flags.group(1).decode().split() if f != "\\Recent"),
                    internaldate=_parse_internaldate(date.group(1).decode()),
                    raw=body,
                )
            )
        return sorted(result, key=lambda m: m.uid)

    # ------------------------------------------------------------------ resetting

    def reset_mailbox(self, folder: str = "INBOX") -> int:
        """Delete and recreate *folder* so that its UIDVALIDITY changes; returns the new one.

        All messages in it are gone afterwards and UIDs start again from 1.  INBOX can't
        be deleted over IMAP, so for INBOX the server is stopped, INBOX's Maildir files
        and indexes are removed and the server is started again (same port); a new
        UIDVALIDITY is then assigned, larger than the old one.  Open IMAP connections
        are therefore dropped by an INBOX reset (as after a server-side rebuild), but
        not by the reset of another folder.  Needs the server running.
        """
        old = self.uidvalidity(folder)
        if folder.upper() == "INBOX":
            self._reset_inbox_on_disk()
        else:
            with self.client() as conn:
                _check(conn.delete(imap_quote(folder)), f"DELETE {folder}")
                _check(conn.create(imap_quote(folder)), f"CREATE {folder}")
                conn.subscribe(imap_quote(folder))
        new = self.uidvalidity(folder)
        if new == old:  # pragma: no cover - Dovecot guarantees a fresh value
            raise DovecotError(f"UIDVALIDITY of {folder} did not change ({old})")
        return new

    def _reset_inbox_on_disk(self) -> None:
        was_running = self.running
        self.stop()
        maildir = self.maildir_root
        for sub in ("cur", "new", "tmp"):
            target = maildir / sub
            if target.is_dir():
                shutil.rmtree(target)
        for name in ("dovecot-uidlist", "dovecot-keywords", "maildirfolder"):
            with contextlib.suppress(FileNotFoundError):
                (maildir / name).unlink()
        for index in maildir.glob("dovecot.index*"):
            index.unlink()
        for index in maildir.glob("dovecot.list.index*"):
            index.unlink()
        if was_running:
            self.start()

    def recreate_with_same_messages(
        self, folder: str = "INBOX", *, keep_flags: bool = True
    ) -> list[int]:
        """Reset *folder* (new UIDVALIDITY) and re-append the same raw messages.

        The messages keep their INTERNALDATE (and flags/keywords unless
        ``keep_flags=False``); their new UIDs are returned in the original order.
        This is what a client sees after a server-side mailbox rebuild or migration.
        """
        saved = self.messages(folder)
        self.reset_mailbox(folder)
        return [
            self.append(
                m.raw,
                m.internaldate,
                folder=folder,
                flags=sorted(m.flags) if keep_flags else (),
            )
            for m in saved
        ]

    def clear(self) -> None:
        """Delete every folder except INBOX and expunge all messages from INBOX.

        UIDVALIDITY of INBOX is unchanged (and UIDs keep increasing); use
        :meth:`reset_mailbox` when a test needs a fresh UID space.
        """
        with self.client() as conn:
            for name in sorted(self._list(conn), key=lambda n: n.count("/"), reverse=True):
                if name.upper() == "INBOX":
                    continue
                with contextlib.suppress(imaplib.IMAP4.error):
                    conn.unsubscribe(imap_quote(name))
                typ, data = conn.delete(imap_quote(name))
                # A parent listed only because of its children vanishes with them.
                if typ != "OK" and b"[NONEXISTENT]" not in b" ".join(data):
                    raise DovecotError(f"DELETE {name} failed: {typ} {data!r}")
            typ, data = conn.select("INBOX")
            if typ == "OK" and data and data[0] != b"0":
                _check(conn.store("1:*", "+FLAGS.SILENT", r"(\Deleted)"), "STORE \\Deleted")
                _check(conn.expunge(), "EXPUNGE")
            conn.close()
