"""Configuration: one TOML file, validated once into frozen settings.

Where the file is found: ``intake --config PATH``, else ``$INTAKE_CONFIG``, else
``./config.toml``. Every section is a frozen dataclass; :func:`parse_settings`
checks every key against it, so a typo is an error instead of a silent default.
Secrets are never in the file: a ``*_env`` key names the environment variable that
holds them, and :func:`load_settings` reads that variable once. Nothing else in
the program reads ``os.environ``.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import os
import re
import tomllib
import types
import typing
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from parsers.result import Limits

from .deadline import deadline_instant
from .errors import ConfigError

__all__ = [
    "AckSettings",
    "AnalysisSettings",
    "CampaignSettings",
    "ConsultationSettings",
    "DatabaseSettings",
    "DigestSettings",
    "ExtractionSettings",
    "ImapSettings",
    "MaildirSettings",
    "OAuth2Settings",
    "QuestionSettings",
    "RetentionSettings",
    "StagesSettings",
    "WorkerSettings",
    "ScheduleSettings",
    "Settings",
    "SmtpSettings",
    "WebSettings",
    "find_config_path",
    "load_settings",
    "require_inbox",
    "unset_secret",
    "parse_settings",
]

SECURITY_CHOICES = ("ssl", "starttls", "none")
AUTH_CHOICES = ("password", "oauth2")
OAUTH2_PROVIDERS = ("microsoft", "google", "command")
OAUTH2_FLOWS = ("client_credentials", "device", "auth_code")
_DEFAULT_FLOW = {"microsoft": "client_credentials", "google": "auth_code", "command": ""}


@dataclass(frozen=True)
class ConsultationSettings:
    """``[consultation]``: what the consultation is called and when it closes."""

    name: str
    deadline: dt.datetime  # naive, read in ``timezone``
    timezone: str = "Europe/London"
    grace_minutes: int = 0
    reference_prefix: str = "REF"
    contact: str = ""

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def cutoff(self) -> dt.datetime:
        """The last instant (UTC) that counts as on time, grace included: the one place
        the deadline becomes an instant (the App, the digest, status and the web view)."""
        return deadline_instant(self.deadline, self.zone, self.grace_minutes)


@dataclass(frozen=True)
class DatabaseSettings:
    """``[database]``: an SQLAlchemy URL; SQLite by default, PostgreSQL in production."""

    url: str = "sqlite:///intake.db"
    # Optional: the environment variable holding the database password, so the
    # file never contains it. Empty: the URL is used as it is.
    password_env: str = ""
    password: str = field(default="", repr=False)

    @property
    def connect_url(self) -> str:
        """The URL to connect with (password from the environment added); never log it.

        Raises:
            ConfigError: ``password_env`` names a variable that is not set.
        """
        if self.password_env and not self.password:
            raise ConfigError(
                unset_secret("database.password_env", self.password_env, "the database password")
            )
        if not self.password:
            return self.url
        from sqlalchemy.engine import make_url

        return make_url(self.url).set(password=self.password).render_as_string(hide_password=False)


@dataclass(frozen=True)
class ImapSettings:
    """``[imap]``: the consultation inbox on an IMAP server."""

    host: str
    username: str
    password_env: str = "INTAKE_IMAP_PASSWORD"  # noqa: S105 - a variable's name, not a secret
    port: int = 0  # 0: 993 for ssl, 143 otherwise
    security: str = "ssl"
    folder: str = "INBOX"
    processed_folder: str = ""
    stored_keyword: str = "$IntakeStored"
    batch_size: int = 50
    timeout_s: float = 60.0
    idle: bool = False
    auth: str = "password"  # or "oauth2": XOAUTH2 with a token from [oauth2]
    password: str = field(default="", repr=False)
    oauth2: OAuth2Settings | None = field(default=None, repr=False)

    @property
    def effective_port(self) -> int:
        if self.port:
            return self.port
        return 993 if self.security == "ssl" else 143

    def require_secrets(self) -> None:
        """Raise ConfigError naming the unset variable, if signing in needs a missing secret."""
        if self.auth == "oauth2" and self.oauth2 is not None:
            self.oauth2.require_secrets()
        elif self.auth == "password" and not self.password:
            raise ConfigError(unset_secret("imap.password_env", self.password_env, "the password"))


@dataclass(frozen=True)
class MaildirSettings:
    """``[maildir]``: a local Maildir used as the inbox instead of IMAP."""

    path: Path


_PARSER_DEFAULTS = Limits()


@dataclass(frozen=True)
class ExtractionSettings:
    """``[limits]``, ``[ocr]`` and ``[extraction]``: how attachments are read, and limits."""

    # The keys shared with the extractors take their defaults from parsers' Limits.
    parse_timeout_s: float = _PARSER_DEFAULTS.parse_timeout_s
    parse_memory_mb: int = _PARSER_DEFAULTS.parse_memory_mb
    max_attachment_mb: float = _PARSER_DEFAULTS.max_attachment_mb
    max_message_mb: float = 50.0
    max_attachments: int = 100
    max_nesting_depth: int = _PARSER_DEFAULTS.max_nesting_depth  # MIME and archives alike
    max_parts: int = 1000
    max_text_mb: float = 20.0
    workers: int = 0  # 0: one per CPU core
    ocr_enabled: bool = _PARSER_DEFAULTS.ocr_enabled
    ocr_languages: str = _PARSER_DEFAULTS.ocr_languages
    ocr_page_timeout_s: float = _PARSER_DEFAULTS.ocr_page_timeout_s
    pdf_engine: str = _PARSER_DEFAULTS.pdf_engine

    def parser_limits(self) -> Limits:
        return dataclasses.replace(
            _PARSER_DEFAULTS,
            parse_timeout_s=self.parse_timeout_s,
            parse_memory_mb=self.parse_memory_mb,
            max_attachment_mb=self.max_attachment_mb,
            ocr_enabled=self.ocr_enabled,
            ocr_languages=self.ocr_languages,
            ocr_page_timeout_s=self.ocr_page_timeout_s,
            pdf_engine=self.pdf_engine,
            max_nesting_depth=self.max_nesting_depth,
        )


@dataclass(frozen=True)
class SmtpSettings:
    """``[smtp]``: the server acknowledgements and digests are sent through."""

    host: str
    sender: str
    port: int = 0  # 0: 465 for ssl, 587 for starttls, 25 otherwise
    security: str = "starttls"
    username: str = ""
    password_env: str = "INTAKE_SMTP_PASSWORD"  # noqa: S105 - a variable's name, not a secret
    timeout_s: float = 30.0
    auth: str = "password"  # or "oauth2": XOAUTH2 with a token from [oauth2]
    password: str = field(default="", repr=False)
    oauth2: OAuth2Settings | None = field(default=None, repr=False)

    @property
    def effective_port(self) -> int:
        if self.port:
            return self.port
        return {"ssl": 465, "starttls": 587}.get(self.security, 25)

    def require_secrets(self) -> None:
        """Raise ConfigError naming the unset variable, if signing in needs a missing secret."""
        if self.auth == "oauth2" and self.oauth2 is not None:
            self.oauth2.require_secrets()
        elif self.auth == "password" and self.username and not self.password:
            raise ConfigError(
                unset_secret("smtp.password_env", self.password_env, "the SMTP password")
            )


@dataclass(frozen=True)
class OAuth2Settings:
    """``[oauth2]``: where access tokens come from when ``[imap]``/``[smtp]`` auth = "oauth2".

    ``account`` (the mailbox that signs in), the secrets and ``database_url`` (where a
    delegated sign-in's refresh token is kept) are filled in by :func:`parse_settings`.
    """

    provider: str  # microsoft | google | command
    flow: str = ""  # client_credentials | device | auth_code; "": the provider's default
    tenant_id: str = ""
    client_id: str = ""
    client_secret_env: str = "INTAKE_OAUTH2_CLIENT_SECRET"  # noqa: S105 - a variable's name
    certificate_path: Path | None = None
    certificate_thumbprint: str = ""
    token_command: str = ""
    scopes: tuple[str, ...] = ()  # (): the provider's default scopes
    authority: str = ""  # "": https://login.microsoftonline.com (other clouds differ)
    token_url: str = ""  # "": derived from the provider (and authority, tenant_id)
    device_code_url: str = ""
    authorize_url: str = ""
    redirect_uri: str = "http://localhost"
    encryption_key_env: str = "INTAKE_TOKEN_KEY"
    timeout_s: float = 30.0
    account: str = ""
    client_secret: str = field(default="", repr=False)
    encryption_key: str = field(default="", repr=False)
    database_url: str = field(default="", repr=False)

    # Why no token can be had (an unset secret), found at load time and raised only
    # when a token is needed, so commands that need none run without the secrets.
    problem: str = field(default="", repr=False)

    @property
    def delegated(self) -> bool:
        """True when a person signs in once and a refresh token is kept."""
        return self.flow in ("device", "auth_code")

    def require_secrets(self) -> None:
        """Raise ConfigError naming the unset variable, if a secret is missing."""
        if self.problem:
            raise ConfigError(self.problem)


@dataclass(frozen=True)
class AckSettings:
    """``[ack]``: the acknowledgement each respondent receives."""

    enabled: bool = True
    subject: str = "Re: {subject} [{reference}]"
    template_text: Path | None = None
    template_html: Path | None = None
    max_per_sender_per_day: int = 3
    max_attempts: int = 8
    # More addresses that are ours (shared mailboxes, aliases): never acknowledged, and
    # their mail is not counted as a response. [smtp] from and the sign-in are always ours.
    own_addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScheduleSettings:
    """``[schedule]``: how often the worker polls."""

    poll_every_minutes: float = 5.0


@dataclass(frozen=True)
class DigestSettings:
    """``[digest]``: the daily intake summary for staff."""

    recipients: tuple[str, ...] = ()
    send_at: dt.time = dt.time(8, 0)


@dataclass(frozen=True)
class StagesSettings:
    """``[stages]``: how each submission's stages (read, ack...) are claimed and retried."""

    max_attempts: int = 3  # then the stage is "failed" for that submission, for a person
    retry_after_s: float = 60.0  # first wait after a failure; doubles with each attempt
    claim_ttl_s: float = 600.0  # a claim not finished by then is taken again
    batch: int = 50  # submissions claimed at once
    lease_ttl_s: float = 120.0  # the inbox lease; a heartbeat renews it while held
    # Processes that run a poll's stages while it fetches (1: only the polling one).
    processes: int = field(default_factory=lambda: min(2, os.cpu_count() or 1))


@dataclass(frozen=True)
class WorkerSettings:
    """``[worker]``: the stage processors that share the work over PostgreSQL."""

    concurrency: int = 0  # stage jobs run at once by one process worker; 0: one per CPU core
    stall_after_s: float = 15.0  # a processor silent this long is taken for dead
    sweep_every_s: float = 2.0  # how often pollers and processors look for stages to queue

    @property
    def slots(self) -> int:
        """Job slots of this host's process worker (each with one extraction process)."""
        return self.concurrency or (os.cpu_count() or 1)


@dataclass(frozen=True)
class RetentionSettings:
    """``[retention]``: how long raw mail and files are kept (UK GDPR)."""

    purge_after_days: int = 0  # 0: keep until `intake purge` is run
    anonymise: bool = False


@dataclass(frozen=True)
class QuestionSettings:
    """One ``[[questions]]`` table: a question of the call, and what answers to it look like."""

    key: str
    title: str
    text: str = ""
    keywords: tuple[str, ...] = ()  # words and phrases an answer is likely to use
    examples: tuple[str, ...] = ()  # sentences staff would expect in an answer


@dataclass(frozen=True)
class AnalysisSettings:
    """``[analysis]``: how passages are tagged with questions."""

    # A passage is tagged with a question when its score reaches this (0 to 1).
    threshold: float = 0.52
    # Also tag a passage with a second question when its score is at least this
    # fraction of the best question's score (and over the threshold).
    second_ratio: float = 1.0
    # Optional: a model2vec model folder on disk (the [embeddings] extra); never downloaded.
    model_path: Path | None = None


@dataclass(frozen=True)
class CampaignSettings:
    """``[campaigns]``: finding template letters (campaigns) and revised versions."""

    enabled: bool = True
    shingle_words: int = 5  # words per shingle
    link_containment: float = 0.35  # share of a representative text a response must hold
    copy_containment: float = 0.5  # share of the template a copy holds (else: partial)
    partial_containment: float = 0.25  # share of the template a partial quotes
    min_members: int = 2  # responses from different senders that make a campaign
    own_text_min_words: int = 8  # a passage of this many words not in the template is kept
    version_repeat: float = 0.6  # share of text repeated that makes a later response a version
    public_mail_domains: tuple[str, ...] = ()  # more domains anyone can have an address at


@dataclass(frozen=True)
class WebSettings:
    """``[web]``: the staff web view (``intake web``)."""

    host: str = "127.0.0.1"
    port: int = 8080
    # The variable holding the cookie-signing key; unset or empty: a key is generated once
    # and kept in the database, so every web process on that database shares it.
    secret_key_env: str = "INTAKE_WEB_SECRET_KEY"  # noqa: S105 - a variable's name
    session_hours: float = 12.0
    # "auto": Secure cookies when the request came over HTTPS (as the proxy says).
    secure_cookies: str = "auto"
    # A header an SSO reverse proxy sets to the signed-in user's email. Empty: off.
    # Only safe when nothing but that proxy can reach the web view (see README).
    trusted_user_header: str = ""
    max_failures_per_account: int = 5
    max_failures_per_address: int = 20
    failure_window_minutes: int = 15
    secret_key: str = field(default="", repr=False)


@dataclass(frozen=True)
class Settings:
    """Everything the program was configured with."""

    consultation: ConsultationSettings
    database: DatabaseSettings = DatabaseSettings()
    imap: ImapSettings | None = None
    maildir: MaildirSettings | None = None
    limits: ExtractionSettings = ExtractionSettings()
    smtp: SmtpSettings | None = None
    ack: AckSettings = AckSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    digest: DigestSettings = DigestSettings()
    retention: RetentionSettings = RetentionSettings()
    stages: StagesSettings = StagesSettings()
    worker: WorkerSettings = WorkerSettings()
    campaigns: CampaignSettings = CampaignSettings()
    oauth2: OAuth2Settings | None = None
    questions: tuple[QuestionSettings, ...] = ()
    analysis: AnalysisSettings = AnalysisSettings()
    web: WebSettings = WebSettings()
    source_path: Path | None = None

    @property
    def acks_on(self) -> bool:
        return self.smtp is not None and self.ack.enabled


# --- validation -------------------------------------------------------------------

_TYPE_WORDS: dict[Any, str] = {
    str: "a string",
    int: "a whole number",
    float: "a number",
    bool: "true or false",
    dt.datetime: "a local date-time such as 2018-07-27T23:59:59 (no quotes, no zone)",
    dt.time: 'a time of day such as 08:00 (as a string "08:00" or a TOML time)',
    Path: "a file or folder path (a string)",
    tuple[str, ...]: 'a list of strings such as ["a@example.org"]',
}


def _convert(key: str, value: Any, hint: Any, base: Path) -> Any:
    """Check one value against its declared type and convert it."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return _convert(key, value, inner[0], base)
    ok: bool
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif hint is str:
        ok = isinstance(value, str)
    elif hint is Path:
        ok = isinstance(value, str) and value != ""
        if ok:
            path = Path(value).expanduser()
            value = path if path.is_absolute() else base / path
    elif hint is dt.datetime:
        ok = isinstance(value, dt.datetime) and value.tzinfo is None
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            # A bare date means "until the end of that day".
            value, ok = dt.datetime.combine(value, dt.time(23, 59, 59, 999999)), True
    elif hint is dt.time:
        if isinstance(value, str):
            try:
                value = dt.time.fromisoformat(value)
            except ValueError:
                pass
        ok = isinstance(value, dt.time)
    elif hint == tuple[str, ...]:
        ok = isinstance(value, list) and all(isinstance(item, str) for item in value)
        value = tuple(value) if ok else value
    else:  # pragma: no cover - a programming error in this module
        raise TypeError(f"no converter for {hint!r}")
    if not ok:
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            raise ConfigError(
                f"{key}: {value.isoformat()} has a zone offset; write the local time without "
                f"one ({value.replace(tzinfo=None).isoformat()}) and set the zone with "
                "consultation.timezone"
            )
        shown = value.isoformat() if isinstance(value, dt.date | dt.time) else repr(value)
        raise ConfigError(f"{key}: expected {_TYPE_WORDS[hint]}, got {shown}")
    return value


def _build(cls: type[Any], name: str, raw: Any, base: Path, *, skip: tuple[str, ...] = ()) -> Any:
    """Build the dataclass ``cls`` for section ``[name]`` from its raw table."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"[{name}] must be a table (a [{name}] section)")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in skip}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(
            f"{name}.{unknown[0]}: unknown key; the keys of [{name}] are "
            + ", ".join(sorted(fields))
        )
    values: dict[str, Any] = {}
    for fname, fdef in fields.items():
        key = f"{name}.{fname}"
        if fname in raw:
            values[fname] = _convert(key, raw[fname], hints[fname], base)
        elif fdef.default is dataclasses.MISSING and fdef.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key}: missing; it is required in [{name}]")
    return cls(**values)


def _check_range(key: str, value: float, low: float, high: float | None = None) -> None:
    if value < low or (high is not None and value > high):
        limit = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{key}: expected a number {limit}, got {value}")


def _check_choice(key: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{key}: expected one of {', '.join(choices)}, got {value!r}")


def unset_secret(key: str, var: str, what: str) -> str:
    """The one-line message for a secret's variable that is not set."""
    return (
        f"{var} is not set: {key} names it as holding {what}; set it in the service's "
        "environment file (see the README), or change the key"
    )


def _consultation(raw: Any, base: Path) -> ConsultationSettings:
    section: ConsultationSettings = _build(ConsultationSettings, "consultation", raw, base)
    try:
        section.zone  # noqa: B018 - validates the zone name
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(
            f"consultation.timezone: unknown time zone {section.timezone!r}; "
            "use an IANA name such as Europe/London"
        ) from exc
    _check_range("consultation.grace_minutes", section.grace_minutes, 0)
    prefix = section.reference_prefix
    if not (prefix.isascii() and prefix.isalnum() and 1 <= len(prefix) <= 10):
        raise ConfigError(
            "consultation.reference_prefix: expected 1 to 10 letters or digits, such as KIL"
        )
    return section


PDF_ENGINES = ("auto", "pdfium", "pdfminer")
# Sections whose keys live on ExtractionSettings: {section: {key: field}}.
_FOLDED = {
    "ocr": {
        "enabled": "ocr_enabled",
        "languages": "ocr_languages",
        "page_timeout_s": "ocr_page_timeout_s",
    },
    "extraction": {"pdf_engine": "pdf_engine"},
}
_OCR_LANGUAGES = re.compile(r"[A-Za-z_]{2,20}(\+[A-Za-z_]{2,20})*")


def parse_settings(
    data: Mapping[str, Any], env: Mapping[str, str], *, base: Path = Path(".")
) -> Settings:
    """Validate a parsed TOML document into :class:`Settings`.

    Args:
        data: the TOML document as a dict.
        env: the environment to read secrets from.
        base: the folder relative paths in the file are read against.

    Raises:
        ConfigError: naming the first bad key and what it should be.
    """
    known = {f.name for f in dataclasses.fields(Settings)} - {"source_path"} | {
        "ocr",
        "extraction",
    }
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"[{unknown[0]}]: unknown section; the sections are {', '.join(sorted(known))}"
        )
    if "consultation" not in data:
        raise ConfigError("[consultation]: missing; it needs at least name and deadline")
    values: dict[str, Any] = {"consultation": _consultation(data["consultation"], base)}
    if "database" in data:
        database = _build(DatabaseSettings, "database", data["database"], base, skip=("password",))
        if database.password_env:
            database = dataclasses.replace(database, password=env.get(database.password_env, ""))
    else:
        database = DatabaseSettings()
    values["database"] = dataclasses.replace(database, url=_database_url(database.url, base))
    if "imap" in data and "maildir" in data:
        raise ConfigError(
            "[imap] or [maildir]: configure one of the two as the inbox, not both "
            "(`intake import` needs neither)"
        )
    if "imap" in data:
        imap = _build(ImapSettings, "imap", data["imap"], base, skip=("password", "oauth2"))
        _check_choice("imap.security", imap.security, SECURITY_CHOICES)
        _check_choice("imap.auth", imap.auth, AUTH_CHOICES)
        _check_range("imap.port", imap.port, 0, 65535)
        _check_range("imap.batch_size", imap.batch_size, 1, 10_000)
        _check_range("imap.timeout_s", imap.timeout_s, 1)
        values["imap"] = dataclasses.replace(imap, password=env.get(imap.password_env, ""))
    elif "maildir" in data:
        values["maildir"] = _build(MaildirSettings, "maildir", data["maildir"], base)
    limits_raw = dict(data.get("limits", {}))
    for section, keys in _FOLDED.items():
        if section not in data:
            continue
        table = data[section]
        if not isinstance(table, Mapping):
            raise ConfigError(f"[{section}] must be a table (a [{section}] section)")
        for key in table:
            if key not in keys:
                raise ConfigError(
                    f"{section}.{key}: unknown key; the keys of [{section}] are "
                    + ", ".join(sorted(keys))
                )
            limits_raw[keys[key]] = table[key]
    for own in (name for keys in _FOLDED.values() for name in keys.values()):
        if own in data.get("limits", {}):
            raise ConfigError(f"limits.{own}: unknown key; it belongs in [ocr] or [extraction]")
    limits = _build(ExtractionSettings, "limits", limits_raw, base)
    _check_choice("extraction.pdf_engine", limits.pdf_engine, PDF_ENGINES)
    _check_range("ocr.page_timeout_s", limits.ocr_page_timeout_s, 1)
    if not _OCR_LANGUAGES.fullmatch(limits.ocr_languages):
        raise ConfigError(
            f"ocr.languages: expected tesseract language names joined by +, such as "
            f"eng+cym, got {limits.ocr_languages!r}"
        )
    for key in ("parse_timeout_s", "parse_memory_mb", "max_attachment_mb", "max_message_mb"):
        _check_range(f"limits.{key}", getattr(limits, key), 1)
    _check_range("limits.workers", limits.workers, 0, 64)
    _check_range("limits.max_attachments", limits.max_attachments, 0)
    _check_range("limits.max_nesting_depth", limits.max_nesting_depth, 1, 100)
    _check_range("limits.max_parts", limits.max_parts, 1)
    _check_range("limits.max_text_mb", limits.max_text_mb, 0.01)
    values["limits"] = limits
    if "smtp" in data:
        raw_smtp = dict(data["smtp"]) if isinstance(data["smtp"], Mapping) else data["smtp"]
        if isinstance(raw_smtp, dict) and "from" in raw_smtp:
            raw_smtp["sender"] = raw_smtp.pop("from")
        smtp = _build(SmtpSettings, "smtp", raw_smtp, base, skip=("password", "oauth2"))
        _check_choice("smtp.security", smtp.security, SECURITY_CHOICES)
        _check_choice("smtp.auth", smtp.auth, AUTH_CHOICES)
        values["smtp"] = dataclasses.replace(smtp, password=env.get(smtp.password_env, ""))
    for name, cls in (
        ("ack", AckSettings),
        ("schedule", ScheduleSettings),
        ("digest", DigestSettings),
        ("retention", RetentionSettings),
        ("stages", StagesSettings),
        ("worker", WorkerSettings),
    ):
        if name in data:
            values[name] = _build(cls, name, data[name], base)
    if "stages" in values:
        stages = values["stages"]
        _check_range("stages.max_attempts", stages.max_attempts, 1, 100)
        _check_range("stages.retry_after_s", stages.retry_after_s, 0)
        _check_range("stages.claim_ttl_s", stages.claim_ttl_s, 10)
        _check_range("stages.batch", stages.batch, 1, 10_000)
        _check_range("stages.lease_ttl_s", stages.lease_ttl_s, 10, 120)
        _check_range("stages.processes", stages.processes, 1, 64)
    if "worker" in values:
        worker = values["worker"]
        _check_range("worker.concurrency", worker.concurrency, 0, 256)
        _check_range("worker.stall_after_s", worker.stall_after_s, 3, 3600)
        _check_range("worker.sweep_every_s", worker.sweep_every_s, 0.1, 600)

    for address in values.get("ack", AckSettings()).own_addresses:
        if "@" not in address or any(ch.isspace() or ch in "<>," for ch in address.strip()):
            raise ConfigError(
                f"ack.own_addresses: {address!r} is not an email address; "
                'write plain addresses such as ["consultation@example.gov.uk"]'
            )
    if "campaigns" in data:
        values["campaigns"] = _campaigns(data["campaigns"], base)
    values["web"] = _web(data.get("web", {}), env, base)
    _with_oauth2(data, values, env, base)
    values["questions"] = _questions(data.get("questions", []), base)
    if "analysis" in data:
        analysis = _build(AnalysisSettings, "analysis", data["analysis"], base)
        _check_range("analysis.threshold", analysis.threshold, 0.0, 1.0)
        _check_range("analysis.second_ratio", analysis.second_ratio, 0.0, 1.0)
        if analysis.model_path is not None and not analysis.model_path.exists():
            raise ConfigError(
                f"analysis.model_path: no such folder {str(analysis.model_path)!r}; put a "
                "sentence-embedding model there or remove the key (nothing is downloaded)"
            )
        values["analysis"] = analysis
    return Settings(**values)


def _questions(raw: Any, base: Path) -> tuple[QuestionSettings, ...]:
    """Validate the ``[[questions]]`` array of tables: unique, short, plain keys."""
    if not isinstance(raw, list):
        raise ConfigError("questions: write each question as a [[questions]] table")
    found: list[QuestionSettings] = []
    for index, table in enumerate(raw, start=1):
        name = f"questions[{index}]"
        question: QuestionSettings = _build(QuestionSettings, name, table, base)
        key = question.key
        if not (1 <= len(key) <= 40 and key.replace("_", "").replace("-", "").isalnum()):
            raise ConfigError(
                f"{name}.key: expected 1 to 40 letters, digits, - or _, such as a, got {key!r}"
            )
        if any(q.key == key for q in found):
            raise ConfigError(f"{name}.key: {key!r} is used by another question; keys are unique")
        if not question.title.strip():
            raise ConfigError(f"{name}.title: empty; give the question a short title")
        found.append(question)
    return tuple(found)


def _campaigns(raw: Any, base: Path) -> CampaignSettings:
    section: CampaignSettings = _build(CampaignSettings, "campaigns", raw, base)
    _check_range("campaigns.shingle_words", section.shingle_words, 2, 8)
    for key in ("link_containment", "copy_containment", "partial_containment", "version_repeat"):
        _check_range(f"campaigns.{key}", getattr(section, key), 0.05, 1)
    _check_range("campaigns.min_members", section.min_members, 2)
    _check_range("campaigns.own_text_min_words", section.own_text_min_words, 1)
    return section


def _web(raw: Any, env: Mapping[str, str], base: Path) -> WebSettings:
    web: WebSettings = _build(WebSettings, "web", raw, base, skip=("secret_key",))
    _check_range("web.port", web.port, 1, 65535)
    _check_range("web.session_hours", web.session_hours, 0.1, 24 * 30)
    _check_choice("web.secure_cookies", web.secure_cookies, ("auto", "always", "never"))
    _check_range("web.max_failures_per_account", web.max_failures_per_account, 1)
    _check_range("web.max_failures_per_address", web.max_failures_per_address, 1)
    _check_range("web.failure_window_minutes", web.failure_window_minutes, 1)
    header = web.trusted_user_header
    if header and not all(ch.isalnum() or ch == "-" for ch in header):
        raise ConfigError(
            f"web.trusted_user_header: {header!r} is not a header name (letters, digits, -)"
        )
    key = env.get(web.secret_key_env, "") if web.secret_key_env else ""
    if key and len(key) < 32:
        raise ConfigError(
            f"web.secret_key_env: {web.secret_key_env} holds a key shorter than 32 characters; "
            'make a longer one, e.g. python3 -c "import secrets; print(secrets.token_urlsafe(48))"'
        )
    return dataclasses.replace(web, secret_key=key)


def _with_oauth2(
    data: Mapping[str, Any], values: dict[str, Any], env: Mapping[str, str], base: Path
) -> None:
    """Validate ``[oauth2]`` and hand it to the sections whose auth is "oauth2"."""
    users = [
        (name, values[name])
        for name in ("imap", "smtp")
        if values.get(name) is not None and values[name].auth == "oauth2"
    ]
    if "oauth2" not in data:
        if users:
            raise ConfigError(
                f'{users[0][0]}.auth: "oauth2" needs an [oauth2] section '
                '(provider = "microsoft", "google" or "command"); see config.example.toml'
            )
        return
    internal = ("account", "client_secret", "encryption_key", "database_url", "problem")
    o: OAuth2Settings = _build(OAuth2Settings, "oauth2", data["oauth2"], base, skip=internal)
    _check_choice("oauth2.provider", o.provider, OAUTH2_PROVIDERS)
    _check_range("oauth2.timeout_s", o.timeout_s, 1)
    flow = o.flow or _DEFAULT_FLOW[o.provider]
    if o.provider == "command":
        if o.flow:
            raise ConfigError('oauth2.flow: not used with provider = "command"; remove it')
        if not o.token_command.strip():
            raise ConfigError(
                'oauth2.token_command: missing; provider = "command" runs it and reads '
                "an access token from what it prints"
            )
    else:
        _check_choice("oauth2.flow", flow, OAUTH2_FLOWS)
        if o.token_command:
            raise ConfigError('oauth2.token_command: only used with provider = "command"')
        if o.provider == "google" and flow != "auth_code":
            raise ConfigError(
                'oauth2.flow: Google mailboxes need flow = "auth_code" (a one-time '
                "`intake auth login`); Google's device flow does not allow mail access and "
                "app-only access is for Microsoft 365"
            )
        if not o.client_id:
            raise ConfigError(
                "oauth2.client_id: missing; it is the application (client) ID of the app "
                "you registered with the provider"
            )
        if o.provider == "microsoft" and not o.tenant_id:
            raise ConfigError(
                "oauth2.tenant_id: missing; it is the Directory (tenant) ID shown on the "
                "app registration's Overview page in Entra ID"
            )
    if o.certificate_path is not None:
        if o.provider != "microsoft" or flow != "client_credentials":
            raise ConfigError(
                'oauth2.certificate_path: only used with provider = "microsoft" and '
                'flow = "client_credentials"'
            )
        if not o.certificate_path.is_file():
            raise ConfigError(
                f"oauth2.certificate_path: no such file {str(o.certificate_path)!r}; it must "
                "be a PEM file holding the private key and the certificate"
            )
    problems: list[str] = []
    secret = env.get(o.client_secret_env, "")
    needs_secret = o.provider == "google" or (
        flow == "client_credentials" and o.certificate_path is None
    )
    if needs_secret and not secret:
        problems.append(
            unset_secret(
                "oauth2.client_secret_env",
                o.client_secret_env,
                "the app's client secret"
                + (" (or set oauth2.certificate_path)" if flow == "client_credentials" else ""),
            )
        )
    key = ""
    if flow in ("device", "auth_code"):
        key = env.get(o.encryption_key_env, "")
        if not key:
            problems.append(
                unset_secret(
                    "oauth2.encryption_key_env",
                    o.encryption_key_env,
                    "a key made by `intake auth new-key` (it encrypts the stored sign-in)",
                )
            )
        else:
            try:
                valid = len(base64.urlsafe_b64decode(key.encode("ascii"))) == 32
            except (ValueError, UnicodeEncodeError):
                valid = False
            if not valid:
                raise ConfigError(
                    f"oauth2.encryption_key_env: {o.encryption_key_env} does not hold a valid "
                    "key; make one with `intake auth new-key`"
                )
    smtp = values.get("smtp")
    if smtp is not None and smtp.auth == "oauth2" and not smtp.username:
        raise ConfigError(
            'smtp.username: required with auth = "oauth2"; it is the address of the '
            "mailbox that signs in"
        )
    accounts = {settings.username.lower() for _, settings in users}
    if flow in ("device", "auth_code") and len(accounts) > 1:
        raise ConfigError(
            "smtp.username: one person signs in for IMAP and SMTP with "
            f'flow = "{flow}", so imap.username and smtp.username must be the same mailbox'
        )
    imap = values.get("imap")
    account = imap.username if imap is not None else smtp.username if smtp is not None else ""
    database: DatabaseSettings = values["database"]
    database_url = ""
    if o.delegated:
        try:
            database_url = database.connect_url
        except ConfigError as exc:
            problems.append(str(exc))
    o = dataclasses.replace(
        o,
        flow=flow,
        account=account,
        client_secret=secret,
        encryption_key=key,
        database_url=database_url,
        problem=problems[0] if problems else "",
    )
    values["oauth2"] = o
    for name, settings in users:
        values[name] = dataclasses.replace(settings, oauth2=o)


def _database_url(url: str, base: Path) -> str:
    """``url`` with a relative SQLite file path read against ``base`` (the config's folder)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(
            f"database.url: {url!r} is not a database URL; use sqlite:///intake.db "
            "(a file next to this configuration) or postgresql://user@host/database"
        ) from exc
    name = parsed.database
    if not parsed.drivername.startswith("sqlite") or not name or name == ":memory:":
        return url
    if name.startswith("file:"):
        return url
    path = Path(name).expanduser()
    if path.is_absolute():
        return url
    return parsed.set(database=str(base / path)).render_as_string(hide_password=False)


def require_inbox(settings: Settings) -> None:
    """Raise ConfigError when neither ``[imap]`` nor ``[maildir]`` is configured."""
    if settings.imap is None and settings.maildir is None:
        raise ConfigError(
            "[imap] or [maildir]: no inbox is configured; add one to poll "
            "(see config.example.toml); `intake import` works without"
        )


def find_config_path(explicit: str | None, env: Mapping[str, str]) -> Path:
    """The config file to read: the ``--config`` option, ``$INTAKE_CONFIG``, ``./config.toml``."""
    return Path(explicit or env.get("INTAKE_CONFIG") or "config.toml")


def load_settings(path: Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the configuration file at ``path``.

    Raises:
        ConfigError: when the file is missing, is not TOML, or fails validation.
    """
    env = os.environ if env is None else env
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{path}: no such configuration file; copy config.example.toml to config.toml "
            "or pass --config PATH"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the configuration file ({exc})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    settings = parse_settings(data, env, base=path.resolve().parent)
    return dataclasses.replace(settings, source_path=path)
