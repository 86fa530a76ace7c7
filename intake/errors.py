"""Errors raised by the ``intake`` package.

Every error the CLI can show derives from :class:`IntakeError`::

    IntakeError
    ├── ConfigError        the configuration file or environment is wrong
    ├── MailboxError       the inbox (IMAP server or Maildir) could not be read
    │   └── MailboxAuthError   the server refused our credentials
    └── DeliveryError      an outgoing message (acknowledgement, digest) was not sent

The CLI turns these into one line that says what to do next; nothing below the CLI
prints.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DeliveryError",
    "IntakeError",
    "MailboxAuthError",
    "MailboxError",
]


class IntakeError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(IntakeError):
    """Raised when the configuration is missing, malformed or inconsistent."""


class MailboxError(IntakeError):
    """Raised when the inbox cannot be reached, selected or read."""


class MailboxAuthError(MailboxError):
    """Raised when the mail server rejects the configured credentials."""


class DeliveryError(IntakeError):
    """Raised when an outgoing message could not be handed to the SMTP server."""
