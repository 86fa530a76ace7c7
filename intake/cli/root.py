"""The root ``intake`` command group, its errors and context, and the core commands.

Every command imports what it uses inside its function, after reading the configuration
(``state.app``): ``intake --help``, a command's ``--help``, a mistaken option and a missing
configuration file then cost no SQLAlchemy, database models or pipeline (about half a
second), and each command loads only its own part of the program.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ..deadline import UK, format_uk
from ..errors import ConfigError, IntakeError
from ..mail.message import Timeliness

if TYPE_CHECKING:
    from store import work

    from ..app import App
    from ..config import Settings

__all__ = ["cli"]

F = TypeVar("F", bound=Callable[..., Any])


# Commands that may create the database (a new SQLite file gets its schema); every
# other command only reads one that exists, so a wrong path is an error, not an empty list.
_CREATES_DATABASE = frozenset({"poll", "import", "worker", "db", "auth", "users", "web"})


class _Context:
    def __init__(self, config: str | None, *, create_database: bool = True) -> None:
        self._config = config
        self.create_database = create_database
        self._app: App | None = None

    @cached_property
    def config_path(self) -> Path:
        from ..config import find_config_path

        return find_config_path(self._config, os.environ)

    @cached_property
    def settings(self) -> Settings:
        from ..config import load_settings

        return load_settings(self.config_path)

    @property
    def app(self) -> App:
        if self._app is None:
            settings = self.settings
            from ..app import App  # after the settings: a missing file costs no SQLAlchemy

            self._app = App(settings, create_database=self.create_database)
        return self._app

    def close(self) -> None:
        if self._app is not None:
            self._app.close()


pass_ctx = click.make_pass_decorator(_Context)


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Mark where a command meets the program's errors (the group turns them into one line)."""
    yield


@contextlib.contextmanager
def usage_errors() -> Iterator[None]:
    """Turn our errors into click's: a configuration mistake is a usage error (exit 2),
    any other of ours a plain failure (exit 1); used by the campaign and tag commands."""
    try:
        yield
    except ConfigError as exc:
        raise click.UsageError(f"configuration: {exc}") from exc
    except _our_errors() as exc:
        raise click.ClickException(str(exc)) from exc


def _loaded(module: str, name: str) -> tuple[type[Exception], ...]:
    """The exception class ``module.name`` when that module has been imported, else none.

    An error of a module never imported cannot have been raised, so the handlers here
    name the errors of ``store`` and SQLAlchemy without importing them for every command.
    """
    found = sys.modules.get(module)
    return (getattr(found, name),) if found is not None else ()


def _our_errors() -> tuple[type[Exception], ...]:
    """The program's own errors: IntakeError, and StoreError once ``store`` is loaded."""
    return (IntakeError, *_loaded("store.errors", "StoreError"))


class Failure(click.ClickException):
    """One line on stderr, exit code 1: the database, network, sign-in or input failed."""

    exit_code = 1


class ConfigFailure(Failure):
    """One line on stderr, exit code 2: the configuration is wrong."""

    exit_code = 2


class _IntakeGroup(click.Group):
    """The root group: every command's errors end here, as one line that says what to do.

    A mistake in the configuration exits 2; a database, network or sign-in failure exits
    1. The traceback is shown only with ``-v``.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except ConfigError as exc:
            raise _failure(ctx, exc, ConfigFailure(_config_message(ctx, str(exc)))) from exc
        except _our_errors() as exc:
            raise _failure(ctx, exc, Failure(str(exc))) from exc
        except _loaded("sqlalchemy.exc", "SQLAlchemyError") as exc:
            raise _failure(ctx, exc, Failure(_database_message(ctx, exc))) from exc
        except OSError as exc:
            raise _failure(ctx, exc, Failure(f"{exc}")) from exc


def _failure(ctx: click.Context, exc: BaseException, failure: Failure) -> Failure:
    """``failure``, after printing the traceback of ``exc`` when ``-v`` was given."""
    if ctx.params.get("verbose"):
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    return failure


def _config_message(ctx: click.Context, message: str) -> str:
    state = ctx.obj
    path = str(state.config_path) if isinstance(state, _Context) else ""
    if path and not message.startswith(path):
        return f"configuration {path}: {message}"
    return f"configuration: {message}"


def _database_message(ctx: click.Context, exc: Exception) -> str:
    state = ctx.obj
    app = state._app if isinstance(state, _Context) else None
    if app is None:
        return f"database error: {str(exc).splitlines()[0]}"
    from store import db

    return db.explain_error(app.settings.database.url, exc)


def _progress(length: int, label: str, counts: Callable[[], str] | None = None) -> Any:
    """A progress bar on stderr (drawn on a terminal only); ``counts`` is shown beside it."""
    return click.progressbar(
        length=length,
        label=label,
        file=sys.stderr,
        show_pos=True,
        item_show_func=(lambda _: counts()) if counts is not None else None,
    )


@contextlib.contextmanager
def _activity(label: str, what: str) -> Iterator[Callable[[int], None]]:
    """A running count on stderr while work of unknown length goes on (terminals only)."""
    done = 0

    def tick(count: int) -> None:
        nonlocal done
        done += count
        if sys.stderr.isatty():
            click.echo(f"\r{label} {what}: {done} message(s) stored", nl=False, err=True)

    if sys.stderr.isatty():
        click.echo(f"{label} {what}...", nl=False, err=True)
    try:
        yield tick
    finally:
        if sys.stderr.isatty():
            click.echo("\r\033[K", nl=False, err=True)


def _require_polling(settings: Settings, *, acks: bool) -> None:
    """Fail before any work when the inbox, or a secret polling will need, is missing."""
    from ..config import require_inbox

    require_inbox(settings)
    if settings.imap is not None:
        settings.imap.require_secrets()
    if acks and settings.acks_on and settings.smtp is not None:
        settings.smtp.require_secrets()


@click.group(cls=_IntakeGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config",
    metavar="PATH",
    envvar="INTAKE_CONFIG",
    help="Configuration file [default: $INTAKE_CONFIG, else ./config.toml].",
)
@click.option("-v", "--verbose", count=True, help="Log progress to stderr (-vv for debug).")
@click.version_option(package_name="consultation-intake")
@click.pass_context
def cli(ctx: click.Context, config: str | None, verbose: int) -> None:
    """Take in, store, read and acknowledge the emailed responses to a consultation.

    Times are shown in UK time. Start with `intake poll`, then `intake list`.
    """
    from ..log import configure as configure_logging

    configure_logging(verbose)
    state = _Context(config, create_database=ctx.invoked_subcommand in _CREATES_DATABASE)
    ctx.obj = state
    ctx.call_on_close(state.close)


@cli.command()
@click.option(
    "--no-ack", is_flag=True, help="Store and read mail but send no acknowledgements (backfills)."
)
@pass_ctx
def poll(state: _Context, no_ack: bool) -> None:
    """Run one cycle: fetch new mail, store it, read its text."""
    app = state.app
    from ..worker import inbox_name, run_cycle

    _require_polling(app.settings, acks=not no_ack)
    with (
        app.pipeline(acks=not no_ack) as pipeline,
        _activity("Polling", f"{inbox_name(app.settings)}") as tick,
    ):
        report = run_cycle(
            pipeline,
            app.inbox_factory(),
            holder=pipeline.holder,
            lease_ttl=dt.timedelta(seconds=app.settings.stages.lease_ttl_s),
            progress=tick,
        )
    acks = report.acks
    click.echo(
        f"{report.mailbox}: {report.stored} new, {report.duplicates} already stored; "
        f"read {report.read.read}, failed {report.read.failed}; "
        + (
            "nothing sent (--no-ack)"
            if no_ack
            else (
                f"acknowledgements sent {acks.sent}, retrying {acks.retrying}, failed {acks.failed}"
            )
            if app.settings.acks_on
            else "acknowledgements are off (no [smtp] section)"
        )
    )
    for _sid, stage, reason in report.read.stages.errors:
        click.echo(f"  {stage} failed: {reason[:300]}", err=True)
    for error in dict.fromkeys(acks.errors):
        click.echo(f"  acknowledgement problem: {error}", err=True)
    for reference in report.references:
        click.echo(f"  stored {reference}")


@cli.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--ack",
    is_flag=True,
    help="Also acknowledge what is imported [default: no acknowledgements for a backfill].",
)
@pass_ctx
def import_(state: _Context, paths: tuple[Path, ...], ack: bool) -> None:
    """Backfill from mail files: .eml, mbox, Maildir folders, Outlook .msg, or folders of these.

    Anything else is skipped with its reason, and the exit code is then 1. Messages
    already stored are skipped quietly. No inbox is needed in the configuration.
    Everything imported is read before the command ends; nobody is acknowledged
    unless --ack is given.
    """
    from parsers.pool import start_server

    state.settings  # noqa: B018 - a broken configuration fails here, before any process starts
    start_server()  # the extractors load on the other core while the program loads
    app = state.app
    from parsers.result import MB

    from ..mail.message import FetchedMail
    from ..mail.sources import import_files, scan_import

    files = scan_import(paths)
    counts: Counter[str] = Counter()
    skipped: list[str] = []
    limit = int(app.settings.limits.max_message_mb * MB)
    with (
        app.pipeline(acks=ack) as pipeline,
        _progress(len(files), "Importing", lambda: _import_counts(counts)) as bar,
    ):
        # Stored a few at a time (one commit each), read meanwhile in a second thread.
        batch: list[tuple[FetchedMail, str]] = []
        held = 0
        size = _IMPORT_BATCH

        def store() -> None:
            nonlocal held, size
            for stored in pipeline.store_sourced(batch) if batch else ():
                counts["new" if stored.created else "already stored"] += 1
            batch.clear()
            held = 0
            size = min(2 * size, _IMPORT_BATCH_MAX)
            wake()

        with pipeline.reading_alongside() as wake:
            current: Path | None = None
            for path, item in import_files(files, pipeline.now, limit):
                if item.mail is None:
                    counts["skipped"] += 1
                    skipped.append(f"skipped {item.source}: {item.skipped}")
                else:
                    batch.append((item.mail, f"file:{path.resolve()}"))
                    held += len(item.mail.raw)
                    if len(batch) >= size or held >= _IMPORT_BATCH_MB * MB:
                        store()
                if current is not None and path != current:
                    bar.update(1)  # a file is done when the next one starts
                current = path
                bar.render_progress()
            store()
        bar.update(len(files) - bar.pos)  # the bar ends full, even past empty files
        read = pipeline.read_pending()
        sent = pipeline.send_acks() if ack else None
    for line in skipped:
        click.echo(line, err=True)
    click.echo(
        f"{_import_counts(counts)}; read {read.read}, failed {read.failed}"
        + (f"; acknowledgements sent {sent.sent}" if sent is not None else "")
    )
    if skipped:
        raise Failure(
            f"{len(skipped)} file(s) or message(s) skipped as not email (listed above); "
            "nothing was stored for them"
        )


# Messages an import stores per transaction: few in the first, so that reading starts
# early; twice as many in each next one, up to the most, so that a long import spends
# little on transactions (storing stays far ahead of reading).
_IMPORT_BATCH = 8
_IMPORT_BATCH_MAX = 64
_IMPORT_BATCH_MB = 16


def _import_counts(counts: Counter[str]) -> str:
    return (
        f"{counts['new']} new, {counts['already stored']} already stored, "
        f"{counts['skipped']} skipped"
    )


def _selection(late: bool, on_time: bool, failed: bool) -> dict[str, Any]:
    if late and on_time:
        raise click.UsageError("choose at most one of --late and --on-time")
    timeliness = Timeliness.LATE if late else Timeliness.ON_TIME if on_time else None
    return {"timeliness": timeliness, "failed": failed}


def _filters(func_: F) -> F:
    for option in reversed(
        [
            click.option(
                "--late", is_flag=True, help="Only submissions received after the deadline."
            ),
            click.option(
                "--on-time", "on_time", is_flag=True, help="Only submissions received in time."
            ),
            click.option(
                "--failed",
                is_flag=True,
                help="Only submissions with something unread or a failed stage.",
            ),
        ]
    ):
        func_ = option(func_)
    return func_


@cli.command("list")
@_filters
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help='JSON lines, without texts: first a line {"meta": ...} saying which config, '
    "database and inbox were read, then one object per submission.",
)
@click.option(
    "--all-versions",
    is_flag=True,
    help="Also list earlier versions a sender has replaced (hidden by default).",
)
@pass_ctx
def list_(
    state: _Context, late: bool, on_time: bool, failed: bool, as_json: bool, all_versions: bool
) -> None:
    """List stored submissions, oldest first; campaign copies are marked."""
    selected = _selection(late, on_time, failed)
    app = state.app
    from store import campaigns as campaign_store
    from store import db, repo, selection, work

    from ..staff.export import iter_records

    query = repo.select_submissions(**selected)
    if not all_versions:
        query = query.where(campaign_store.not_superseded())
    out = sys.stdout
    with _errors(), app.sessions() as session:
        failures = work.failed_stages_by_reference(session)
        if as_json:
            out.write(json.dumps({"meta": _meta(state, app.settings)}, ensure_ascii=False) + "\n")
            for record in iter_records(session, query, with_text=False):
                record["failed_stages"] = [
                    _failure_record(f) for f in failures.get(record["reference"], [])
                ]
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            return
        tags = campaign_store.member_tags(session)
        rows = selection.list_rows_by_arrival(session, query)
        header = True
        for row in rows:
            if header:
                out.write(
                    _LIST_FORMAT.format(
                        "REFERENCE", "RECEIVED (UK)", "STATUS", "FROM", "FILES", "SUBJECT"
                    )
                )
                header = False
            files = f"{row.files} file(s)" + (f", {row.unread} unread" if row.unread else "")
            tag = tags.get(row.id)
            mark = f"  [campaign {tag[0]}: {tag[1]}]" if tag else ""
            out.write(
                _LIST_FORMAT.format(
                    row.reference,
                    format_uk(row.received_at),
                    row.timeliness or row.status,
                    row.sender_email or "-",
                    files,
                    (row.subject or "")[:60] + mark,
                )
            )
            for failure in failures.get(row.reference, []) if failed else []:
                out.write(
                    f"{'':<10}  {failure.stage} stage FAILED after {failure.attempts} "
                    f"attempt(s), last {format_uk(failure.failed_at)}: {failure.error[:200]}\n"
                )
        if header:
            click.echo(
                f"no submissions in the {db.describe_url(app.settings.database.url)}"
                + (" match" if late or on_time or failed else ""),
                err=True,
            )
        counts = campaign_store.honest_counts(session)
    if counts.campaign_copies or counts.superseded:
        click.echo(f"Counted: {counts.line()}", err=True)


_LIST_FORMAT = "{:<10}  {:<28}  {:<8} {:<32.32} {:<20} {}\n"


def _failure_record(failure: work.FailedStage) -> dict[str, Any]:
    """One failed stage in ``list --json``: the time in UTC (ISO) and in UK time."""
    return {
        "stage": failure.stage,
        "attempts": failure.attempts,
        "error": failure.error,
        "failed_at": failure.failed_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "failed_at_uk": format_uk(failure.failed_at),
    }


def _meta(state: _Context, settings: Settings) -> dict[str, Any]:
    """Which configuration, database and inbox a command used (for --json output)."""
    from store import db

    from ..worker import inbox_name

    return {
        "config": str(state.config_path.resolve()),
        "database": db.describe_url(settings.database.url),
        "inbox": inbox_name(settings) if settings.imap or settings.maildir else None,
    }


@cli.command()
@click.argument("reference")
@click.option("--json", "as_json", is_flag=True, help="The full record as JSON, with texts.")
@click.option(
    "--save",
    "save_to",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write the original message (REF.eml) and its attachments into DIR.",
)
@pass_ctx
def show(state: _Context, reference: str, as_json: bool, save_to: Path | None) -> None:
    """Show one submission and the text read from it (through a pager on a terminal)."""
    app = state.app
    from store import repo
    from store.parts import skipped_by_submission

    from ..staff.campaigns import campaign_lines, response_campaign
    from ..staff.export import submission_record

    with _errors(), app.sessions() as session:
        sub = repo.get_by_reference(session, reference)
        record = submission_record(sub)
        if save_to is not None:
            from ..mail.originals import save_originals

            raw = repo.load_raw(session, sub.id)
            for path in save_originals(sub.reference or reference.upper(), raw, save_to):
                click.echo(f"wrote {path}")
            return
        record["skipped_parts"] = [
            {"position": p.position, "content_type": p.content_type, "filename": p.filename}
            | {"size": p.size, "reason": p.reason}
            for p in skipped_by_submission(session, [sub.id]).get(sub.id, [])
        ]
        found = response_campaign(session, sub)
    record["campaign"], record["supersedes"] = found.campaign, found.supersedes
    record["superseded_by"] = found.superseded_by
    if as_json:
        click.echo(json.dumps(record, ensure_ascii=False, indent=2))
        return
    timeliness = record["timeliness"] or "-"
    if record["sent_in_time"]:
        timeliness += " (sent before the deadline, received after: for staff to judge)"
    if record["timeliness_override_reason"]:
        timeliness += f" (set by staff: {record['timeliness_override_reason']})"
    lines = [
        f"Reference:  {record['reference']}",
        f"From:       {record['sender_name'] or ''} <{record['sender_email'] or '-'}>",
        f"Subject:    {record['subject'] or ''}",
        f"Received:   {record['received_at_uk'] or '-'} (from {record['received_at_source']})",
        f"Timeliness: {timeliness}",
        f"Status:     {record['status']}" + (f": {record['error']}" if record["error"] else ""),
        f"Ack:        {record['ack_status']}",
        *campaign_lines(found),
        "",
        record["body_text"] or "(no body text)",
    ]
    for att in record["attachments"]:
        read_by = f", read by {att['engine']}" if att["engine"] else ""
        if att["ocr_pages"]:
            read_by += f", OCR on page(s) {att['ocr_pages']}"
        lines += [
            "",
            f"--- {att['filename']} [{att['detected_type']}, {att['size']} bytes{read_by}]: "
            f"{att['parse_status']}" + (f" - {att['error']}" if att["error"] else ""),
            att["text"] or "",
        ]
    for part in record["skipped_parts"]:
        name = part["filename"] or part["content_type"]
        lines += [
            "",
            f"--- {name} [{part['content_type']}, {part['size']} bytes]: {part['reason']}",
        ]
    if found.diff:
        lines += ["", f"--- changes in the version that replaced this one ({found.superseded_by}):"]
        lines.append(found.diff)
    text = "\n".join(lines)
    if sys.stdout.isatty():
        # less: quit at once when it fits on one screen (-F), keep colours (-R), and
        # leave the text on the screen after quitting (-X); a LESS of one's own wins.
        os.environ.setdefault("LESS", "FRX")
        click.echo_via_pager(text + "\n")
    else:
        click.echo(text)


@cli.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv", "consult"]),
    default="jsonl",
    show_default=True,
    help="consult: a folder of passages per question for i.AI's Consult (needs -o DIR).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="File to write [default: stdout]; a folder for --format consult.",
)
@click.option(
    "--excel",
    is_flag=True,
    help="CSV for Excel on stdout too: start with a byte-order mark so accents survive "
    "(a CSV file written with -o always has one).",
)
@_filters
@pass_ctx
def export(
    state: _Context,
    fmt: str,
    output: Path | None,
    excel: bool,
    late: bool,
    on_time: bool,
    failed: bool,
) -> None:
    """Export submissions with their text: JSONL (one object per line) or CSV."""
    if fmt == "consult":
        _export_consult(state, output)
        return
    if excel and fmt != "csv":
        raise click.BadParameter("only with --format csv", param_hint="--excel")
    selected = _selection(late, on_time, failed)
    app = state.app
    from store import repo, selection

    from ..staff.export import iter_records, write_csv, write_jsonl

    query = repo.select_submissions(**selected)
    with _errors(), app.sessions() as session:
        records = iter_records(session, query, with_text=fmt == "jsonl")
        write = write_jsonl if fmt == "jsonl" else write_csv
        if output is None:
            if excel:
                sys.stdout.write("\ufeff")
            write(records, sys.stdout)
            return
        total = selection.count_selected(session, query)
        # Excel reads a CSV without a byte-order mark as the local code page.
        encoding = "utf-8-sig" if fmt == "csv" else "utf-8"
        with (
            output.open("w", encoding=encoding, newline="") as out,
            _progress(total, "Exporting") as bar,
        ):
            count = write(_counting(records, bar), out)
    click.echo(f"wrote {count} submission(s) to {output}", err=True)


def _export_consult(state: _Context, output: Path | None) -> None:
    if output is None:
        raise click.UsageError("--format consult writes a folder: give it with -o DIR")
    if output.exists() and not output.is_dir():
        raise click.UsageError(f"-o {output}: is a file; give a folder for --format consult")
    app = state.app
    from ..staff.consult import write_consult

    with _errors(), app.sessions() as session:
        people, answers = write_consult(session, app.settings.questions, output)
    click.echo(f"wrote {answers} answer(s) from {people} respondent(s) to {output}", err=True)


def _counting(records: Iterator[dict[str, Any]], bar: Any) -> Iterator[dict[str, Any]]:
    """Pass records through, moving the progress bar every 100 (updates cost time)."""
    done = 0
    for done, record in enumerate(records, start=1):
        if done % 100 == 0:
            bar.update(100)
        yield record
    bar.update(done % 100)  # the bar ends at the total, not at the last hundred


def _login_name() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (a container without a passwd entry)
        return "unknown"


@cli.command("set-timeliness")
@click.argument("reference")
@click.argument("timeliness", type=click.Choice([t.value for t in Timeliness]))
@click.option("--reason", required=True, help="Why staff decided this (kept with the record).")
@click.option("--by", "by", help="Who decided [default: your login name].")
@pass_ctx
def set_timeliness(
    state: _Context, reference: str, timeliness: str, reason: str, by: str | None
) -> None:
    """Override whether a submission counts as on time, with a recorded reason and who."""
    reason = " ".join(reason.split())
    if len(reason) < 3:
        raise click.BadParameter("say why, in a few words", param_hint="--reason")
    who = (by or "").strip() or _login_name()
    app = state.app
    from ..staff import actions

    with _errors():
        before, _ = actions.set_timeliness(app, reference, timeliness, reason, who)
    click.echo(f"{reference.upper()}: {before} -> {timeliness} (by {who})")


@cli.command()
@click.argument("references", nargs=-1)
@click.option(
    "--failed", is_flag=True, help="Every submission with an attachment that was not read."
)
@click.option(
    "--status", "status", help="Every submission with an attachment in this status (e.g. timeout)."
)
@click.option("--all", "all_", is_flag=True, help="Every submission.")
@click.option("--dry-run", is_flag=True, help="Say what would be re-read, change nothing.")
@pass_ctx
def reparse(
    state: _Context,
    references: tuple[str, ...],
    failed: bool,
    status: str | None,
    all_: bool,
    dry_run: bool,
) -> None:
    """Read submissions again from their stored bytes (never from the mailbox)."""
    if sum([bool(references), failed, bool(status), all_]) != 1:
        raise click.UsageError(
            "give exactly one of: REFERENCE..., --failed, --status STATUS, --all"
        )
    app = state.app
    from ..staff import actions

    with _errors():
        ids, before = actions.reparse_ids(app, references, failed=failed, status=status)
    click.echo(f"{len(ids)} submission(s) to re-read; attachments now: {_counts(before)}")
    if dry_run or not ids:
        return
    with _errors(), _progress(len(ids), "Re-reading") as bar:
        after = actions.reparse(app, ids, before, progress=bar.update).after
    click.echo(f"attachments after: {_counts(after)}")


@cli.command()
@click.option("--failed", is_flag=True, help="Only acknowledgements that could not be sent.")
@click.option(
    "--suppressed", is_flag=True, help="Only acknowledgements held back (robots, rate limit)."
)
@pass_ctx
def acks(state: _Context, failed: bool, suppressed: bool) -> None:
    """List acknowledgements: to whom, when, and what happened."""
    app = state.app
    from store import acks as ack_store

    if not app.settings.acks_on:
        click.echo(
            "acknowledgements are off: add an [smtp] section "
            "(and [ack] enabled = true) to send them",
            err=True,
        )
    wanted = [s for s, on in (("failed", failed), ("suppressed", suppressed)) if on]
    with _errors(), app.sessions() as session:
        for ack, reference in ack_store.acks_with_references(session, wanted):
            when = format_uk(ack.sent_at) if ack.sent_at else f"{ack.attempts} attempt(s)"
            to_addr = ack.to_addr or "-"
            reason = ack.reason or ""
            click.echo(f"{reference}  {ack.status:<10} {to_addr:<32.32} {when:<28} {reason}")


@cli.command("resend-ack")
@click.argument("reference")
@click.option("--reason", default="", help="Why it is sent again (recorded).")
@pass_ctx
def resend_ack(state: _Context, reference: str, reason: str) -> None:
    """Send the acknowledgement of one submission again (explicit and recorded)."""
    app = state.app
    from ..staff import actions

    with _errors():
        to_addr, report = actions.resend_ack(app, reference, reason)
    if report.errors:
        raise click.ClickException(
            f"not sent yet, will be retried by the next poll: {report.errors[0]}"
        )
    click.echo(f"{reference.upper()}: acknowledgement sent again to {to_addr}")


@cli.command()
@click.option(
    "--role",
    type=click.Choice(["all", "poll", "process"]),
    default="all",
    show_default=True,
    help="poll: take mail in, queue stages, send the digest (one per inbox); process: run "
    "queued stages (PostgreSQL: as many as you like, on any host); all: both.",
)
@pass_ctx
def worker(state: _Context, role: str) -> None:
    """Run in the foreground: poll on a schedule, run the stages, send the daily digest.

    For systemd or a container. SIGTERM or Ctrl-C finishes the current batch of messages and
    stops; a second one stops at once. With PostgreSQL, start one `--role poll` worker per
    inbox and any number of `--role process` workers, on any host, to share the reading.
    """
    app = state.app
    from store import db

    from ..scheduler import Worker  # APScheduler is only needed here
    from ..worker import inbox_name

    if role != "process":
        _require_polling(app.settings, acks=True)
    app.engine  # noqa: B018 - fail now, not in the first job, if the database is wrong
    s = app.settings
    doing = (
        f"polling {inbox_name(s)} every {s.schedule.poll_every_minutes:g} minute(s)"
        if role != "process"
        else "running queued stages"
        if app.engine.dialect.name == "postgresql"
        else "running the stages in this process (SQLite has no queue to share)"
    )
    click.echo(
        f"intake worker{'' if role == 'all' else f' --role {role}'}: {doing} into the "
        f"{db.describe_url(s.database.url)}; "
        + ("acknowledgements " + ("on" if s.acks_on else "off"))
        + (
            f"; digest at {s.digest.send_at:%H:%M}"
            if s.digest.recipients and role != "process"
            else ""
        )
        + ". Ctrl-C or SIGTERM stops.",
        err=True,
    )
    Worker(app, role=role).run()


@cli.command()
@pass_ctx
def status(state: _Context) -> None:
    """Health at a glance; exits 1 when the last poll failed or is overdue (for monitors)."""
    app = state.app
    from store import db

    from ..staff.health import gather_health

    with _errors(), app.sessions() as session:
        health = gather_health(session, app.settings, app.now())
    click.echo(f"Configuration: {state.config_path.resolve()}")
    click.echo(f"Database: {db.describe_url(app.settings.database.url)}")
    click.echo("\n".join(health.lines()))
    if not health.healthy:
        raise click.exceptions.Exit(1)


@cli.command()
@click.option("--print", "print_", is_flag=True, help="Print the digest's text; send nothing.")
@click.option("--send", is_flag=True, help="Send it now to [digest] recipients.")
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M"]),
    help="Start of the period, UK time [default: the end of the last digest sent].",
)
@pass_ctx
def digest(state: _Context, print_: bool, send: bool, since: dt.datetime | None) -> None:
    """The staff intake digest: what came in, what is late, what needs a person."""
    if print_ == send:
        raise click.UsageError("give one of --print or --send")
    app = state.app
    from store import repo

    from ..staff.daily import build_digest, describe, send_digest
    from ..staff.digest import digest_text

    start = since.replace(tzinfo=UK).astimezone(dt.UTC) if since else None
    with _errors():
        if print_:
            with app.sessions() as session:
                if start is None:
                    last = repo.last_sent_digest(session)
                    start = last.period_end if last else None
                click.echo(
                    digest_text(build_digest(session, app.settings, app.now(), start)), nl=False
                )
            return
        mailer = app.mailer()
        if mailer is None:
            raise ConfigError("[smtp]: sending the digest needs an [smtp] section")
        run = send_digest(app.sessions, app.settings, mailer, app.now, scheduled=False, since=start)
    click.echo(f"sent the {describe(run)}" if run else "nothing sent")


@cli.command()
@pass_ctx
def check(state: _Context) -> None:
    """Open the database, sign in to IMAP and SMTP as configured; say what works (no mail sent)."""
    settings = state.app.settings
    from ..mail.check import run_checks

    click.echo(f"Configuration: OK (read {state.config_path.resolve()})")
    results = run_checks(settings, state.app.token_sources)
    for result in results:
        click.echo(result.line())
    if not all(result.ok for result in results):
        click.echo("Fix what FAILED above, then run `intake check` again.", err=True)
        raise click.exceptions.Exit(1)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "none"
