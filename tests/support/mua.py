"""Compose real e-mail messages with a real mail client (s-nail).

:func:`compose_with_snail` runs ``s-nail`` in send mode with its ``mta`` variable
pointing at a tiny shell script that writes the message it is handed on stdin to
a file.  The returned bytes are therefore exactly what the client would give to
``sendmail`` -- its own MIME structure, ``Message-ID``, ``Date``, RFC 2047 encoded
subject and RFC 2231 encoded attachment names -- with LF line endings, as an MTA
receives them.  Feed them to :meth:`tests.support.dovecot.Dovecot.deliver`
(``dovecot-lda``) or :meth:`~tests.support.dovecot.Dovecot.append`.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["SnailError", "compose_with_snail", "find_snail", "snail_available"]


class SnailError(RuntimeError):
    """s-nail is missing or failed to produce a message."""


def find_snail() -> str | None:
    """Path of the ``s-nail`` binary (Debian package ``s-nail``), or ``None``."""
    return shutil.which("s-nail")


def snail_available() -> bool:
    """True when s-nail is installed (use with ``pytest.mark.skipif``)."""
    return find_snail() is not None


def compose_with_snail(
    sender: str,
    to: str | Sequence[str],
    subject: str,
    body: str,
    attachments: Sequence[str | os.PathLike[str]] = (),
    extra_headers: Mapping[str, str] | None = None,
    *,
    cc: Sequence[str] = (),
    hostname: str = "mua.test",
    timeout: float = 30.0,
) -> bytes:
    """Let s-nail compose a message and return its raw bytes (LF line endings).

    Args:
        sender: ``From`` address, e.g. ``"Jörg Müller <joerg@example.org>"`` (``-r``).
        to: one recipient or several.
        subject: may contain non-ASCII; s-nail encodes it (RFC 2047).
        body: the text part (UTF-8).
        attachments: files to attach (``-a``); non-ASCII names are RFC 2231 encoded.
            A name containing ``=`` or ``#`` is rejected (s-nail treats those as
            charset specifications).
        extra_headers: additional header fields (``-C "Field: body"``).
        cc: ``Cc`` recipients.
        hostname: domain part used in the generated ``Message-ID``.

    The client reads no resource files (``-:/``), runs in batch mode (``-#``)
    with ``ttycharset=utf-8`` and a private ``HOME``, so the result does not
    depend on the machine's configuration.
    """
    snail = find_snail()
    if snail is None:
        raise SnailError("s-nail not found (apt-get install s-nail)")
    recipients = [to] if isinstance(to, str) else list(to)
    if not recipients:
        raise ValueError("at least one recipient is needed")

    with tempfile.TemporaryDirectory(prefix="intake-snail-") as tmp:
        workdir = Path(tmp)
        outfile = workdir / "message.eml"
        mta = workdir / "capture-mta"
        # s-nail calls it like sendmail: mta -i [-F name] -f from -- rcpt...
        mta.write_text(f"#!/bin/sh\nexec cat > {shlex.quote(str(outfile))}\n")
        mta.chmod(0o700)

        cmd = [
            snail,
            "-:/",  # load no resource files at all
            "-#",  # batch mode: no tty interaction, errors are fatal
            "-Sv15-compat",
            "-Sttycharset=utf-8",
            "-Ssendcharsets=utf-8",
            "-Sexpandaddr=fail,-all,+addr",  # only plain addresses; no file/pipe targets
            f"-Smta={mta}",
            "-Ssendwait",  # wait for the "MTA" to finish before exiting
            "-Snosave",  # no dead.letter
            f"-Shostname={hostname}",
            "-r",
            sender,
            "-s",
            subject,
        ]
        for address in cc:
            cmd += ["-c", address]
        for attachment in attachments:
            path = Path(attachment).resolve()
            if not path.is_file():
                raise FileNotFoundError(path)
            if "=" in path.name or "#" in path.name:
                raise ValueError(f"s-nail can't attach a file named {path.name!r}")
            cmd += ["-a", str(path)]
        for name, value in (extra_headers or {}).items():
            cmd += ["-C", f"{name}: {value}"]
        cmd += ["-.", *recipients]

        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),
            "LC_ALL": "C.UTF-8",
            "TZ": "UTC",
            "MAILRC": "/dev/null",
        }
        result = subprocess.run(
            cmd,
            input=body.encode("utf-8"),
            capture_output=True,
            env=env,
            cwd=workdir,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0 or not outfile.exists():
            raise SnailError(
                f"s-nail exited {result.returncode}: {result.stderr.decode(errors='replace')}"
            )
        return outfile.read_bytes()
