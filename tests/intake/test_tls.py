"""TLS is verified for IMAP and SMTP, and never silently dropped."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from intake.config import ImapSettings, SmtpSettings
from intake.errors import DeliveryError, MailboxError
from intake.mail.imap import ImapInbox
from intake.mail.smtp import Mailer
from tests.support import Dovecot


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def untrusted_tls_server(tmp_path: Path) -> Iterator[int]:
    """A TLS server on loopback with a self-signed certificate that greets like IMAP/SMTP."""
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                try:
                    with context.wrap_socket(conn, server_side=True) as tls:
                        tls.sendall(b"* OK ready\r\n")
                except (ssl.SSLError, OSError):
                    pass  # the client refused our certificate: that is the point

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port
    stop.set()
    thread.join(timeout=5)
    listener.close()


def test_imap_refuses_an_untrusted_certificate(untrusted_tls_server: int) -> None:
    """security = "ssl" verifies the server's certificate; a self-signed one is refused."""
    settings = ImapSettings(
        host="127.0.0.1", username="u", port=untrusted_tls_server, security="ssl", timeout_s=5
    )
    with pytest.raises(MailboxError, match="(?i)certificate"):
        ImapInbox(settings, max_message_bytes=10**6).connect()


def test_smtp_refuses_an_untrusted_certificate(untrusted_tls_server: int) -> None:
    """SMTP over TLS verifies the certificate too."""
    settings = SmtpSettings(
        host="127.0.0.1",
        sender="k@example.org",
        port=untrusted_tls_server,
        security="ssl",
        timeout_s=5,
    )
    with pytest.raises(DeliveryError, match="(?i)certificate"), Mailer(settings).connect():
        pass


def test_starttls_is_never_skipped(dovecot: Dovecot) -> None:
    """security = "starttls" against a server that offers no STARTTLS fails; no plain-text login."""
    settings = ImapSettings(
        host=dovecot.host,
        username=dovecot.user,
        port=dovecot.port,
        security="starttls",
        timeout_s=5,
        password=dovecot.password,
    )
    with pytest.raises(MailboxError, match="did not start TLS"):
        ImapInbox(settings, max_message_bytes=10**6).connect()


def test_smtp_starttls_is_never_skipped(smtp) -> None:
    """SMTP with security = "starttls" against a server without STARTTLS fails; nothing is sent."""
    settings = SmtpSettings(
        host=smtp.host, sender="k@example.org", port=smtp.port, security="starttls", timeout_s=5
    )
    with pytest.raises(DeliveryError, match="(?i)starttls"), Mailer(settings).connect():
        pass
    assert smtp.messages == []
