"""Test-support servers and clients: a private Dovecot, a recording SMTP server, s-nail.

Import from here (``from tests.support import Dovecot, SmtpServer, compose_with_snail``)
or, when ``tests/`` itself is on ``sys.path`` (pytest's default rootdir-less
"prepend" import mode with no ``tests/__init__.py``), ``from support import ...``.
"""

from .dovecot import (
    Dovecot,
    DovecotError,
    StoredMessage,
    dovecot_available,
    find_dovecot,
    find_dovecot_lda,
    free_port,
    imap_quote,
)
from .mua import SnailError, compose_with_snail, find_snail, snail_available
from .smtp import ReceivedMessage, SmtpServer

__all__ = [
    "Dovecot",
    "DovecotError",
    "ReceivedMessage",
    "SmtpServer",
    "SnailError",
    "StoredMessage",
    "compose_with_snail",
    "dovecot_available",
    "find_dovecot",
    "find_dovecot_lda",
    "find_snail",
    "free_port",
    "imap_quote",
    "snail_available",
]
