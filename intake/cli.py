"""The ``intake`` command line: a thin shell over the worker, pipeline and store."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy import func, select

from store import db, repo
from store.errors import StoreError
from store.models import Attachment, Submission

from . import outbox
from .app import App
from .config import find_config_path, load_settings
from .daily import build_digest, describe, send_digest
from .deadline import UK, format_uk
from .digest import digest_text
from .errors import ConfigError, IntakeError
from .export import iter_records, submission_record, write_csv, write_jsonl
from .health import gather_health
from .message import Timeliness
from .worker import holder_id, import_path, run_cycle

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])


class _Context:
    def __init__(self, config: str | None) -> None:
        self.config = config
        self._app: App | None = None

    @property
    def app(self) -> App:
        if self._app is None:
            self._app = App(load_settings(find_config_path(self.config, os.environ)))
        return self._app

    def close(self) -> None:
        if self._app is not None:
            self._app.close()


pass_ctx = click.make_pass_decorator(_Context)


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Turn the program's errors into one line that says what to do next."""
    try:
        yield
    except ConfigError as exc:
        raise click.UsageError(f"configuration: {exc}") from exc
    except (IntakeError, StoreError) as exc:
        raise click.ClickException(str(exc)) from exc


def _progress(length: int, label: str) -> Any:
    return click.progressbar(length=length, label=label, file=sys.stderr, show_pos=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    state = _Context(config)
    ctx.obj = state
    ctx.call_on_close(state.close)


@cli.command()
@click.option(
    "--no-ack", is_flag=True, help="Store and read mail but send no acknowledgements (backfills)."
)
@pass_ctx
def poll(state: _Context, no_ack: bool) -> None:
    """Run one cycle: fetch new mail, store it, read its text."""
    with _errors():
        app = state.app
        with app.pipeline(acks=not no_ack) as pipeline:
            report = run_cycle(
                pipeline,
                app.inbox_factory(),
                holder=holder_id(),
                lease_ttl=dt.timedelta(minutes=30),
            )
    acks = report.acks
    click.echo(
        f"{report.mailbox}: {report.stored} new, {report.duplicates} already stored; "
        f"read {report.read.read}, failed {report.read.failed}; "
        + (
            f"acknowledgements sent {acks.sent}, retrying {acks.retrying}, failed {acks.failed}"
            if app.settings.acks_on
            else "acknowledgements are off (no [smtp] section)"
        )
    )
    for error in dict.fromkeys(acks.errors):
        click.echo(f"  acknowledgement problem: {error}", err=True)
    for reference in report.references:
        click.echo(f"  stored {reference}")


@cli.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@pass_ctx
def import_(state: _Context, paths: tuple[Path, ...]) -> None:
    """Backfill from .eml files, mbox files or Maildir folders (duplicates are skipped)."""
    with _errors():
        app = state.app
        with app.pipeline() as pipeline:
            for path in paths:
                report = import_path(pipeline, path)
                click.echo(f"{path}: {report.stored} new, {report.duplicates} already stored")
            counts = pipeline.read_pending()
    click.echo(f"read {counts.read}, failed {counts.failed}")


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
            click.option("--failed", is_flag=True, help="Only submissions with something unread."),
        ]
    ):
        func_ = option(func_)
    return func_


@cli.command("list")
@_filters
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, without texts.")
@pass_ctx
def list_(state: _Context, late: bool, on_time: bool, failed: bool, as_json: bool) -> None:
    """List stored submissions, oldest first."""
    query = repo.select_submissions(**_selection(late, on_time, failed))
    out = sys.stdout
    with _errors(), state.app.sessions() as session:
        if as_json:
            for record in iter_records(session, query, with_text=False):
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
            return
        for row in session.execute(repo.list_rows(query).execution_options(yield_per=2000)):
            files = f"{row.files} file(s)" + (f", {row.unread} unread" if row.unread else "")
            out.write(
                f"{row.reference}  {format_uk(row.received_at)}  {row.timeliness or row.status:<8} "
                f"{(row.sender_email or '-'):<32.32} {files:<20} {(row.subject or '')[:60]}\n"
            )


@cli.command()
@click.argument("reference")
@click.option("--json", "as_json", is_flag=True, help="The full record as JSON, with texts.")
@pass_ctx
def show(state: _Context, reference: str, as_json: bool) -> None:
    """Show one submission and the text read from it."""
    with _errors(), state.app.sessions() as session:
        record = submission_record(repo.get_by_reference(session, reference))
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
    click.echo("\n".join(lines))


@cli.command()
@click.option(
    "--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl", show_default=True
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write [default: stdout].",
)
@_filters
@pass_ctx
def export(
    state: _Context, fmt: str, output: Path | None, late: bool, on_time: bool, failed: bool
) -> None:
    """Export submissions with their text: JSONL (one object per line) or CSV."""
    query = repo.select_submissions(**_selection(late, on_time, failed))
    with _errors(), state.app.sessions() as session:
        records = iter_records(session, query, with_text=fmt == "jsonl")
        write = write_jsonl if fmt == "jsonl" else write_csv
        if output is None:
            write(records, sys.stdout)
            return
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        with (
            output.open("w", encoding="utf-8", newline="") as out,
            _progress(total, "Exporting") as bar,
        ):
            count = write(_counting(records, bar), out)
    click.echo(f"wrote {count} submission(s) to {output}", err=True)


def _counting(records: Iterator[dict[str, Any]], bar: Any) -> Iterator[dict[str, Any]]:
    """Pass records through, moving the progress bar every 500 (updates cost time)."""
    for n, record in enumerate(records, start=1):
        if n % 500 == 0:
            bar.update(500)
        yield record


@cli.command("set-timeliness")
@click.argument("reference")
@click.argument("timeliness", type=click.Choice([t.value for t in Timeliness]))
@click.option("--reason", required=True, help="Why staff decided this (kept with the record).")
@pass_ctx
def set_timeliness(state: _Context, reference: str, timeliness: str, reason: str) -> None:
    """Override whether a submission counts as on time, with a recorded reason."""
    app = state.app
    with _errors(), app.sessions() as session:
        sub = repo.get_by_reference(session, reference)
        before = sub.timeliness
        sub.timeliness = timeliness
        sub.timeliness_override_reason = reason
        repo.audit(
            session,
            "set-timeliness",
            sub.reference,
            f"{before} -> {timeliness}: {reason}",
            app.now(),
        )
        session.commit()
    click.echo(f"{reference.upper()}: {before} -> {timeliness}")


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
    with _errors(), app.sessions() as session:
        query = select(Submission.id).order_by(Submission.id)
        if references:
            ids = [repo.get_by_reference(session, ref).id for ref in references]
        else:
            if failed:
                query = query.where(repo.needs_rereading())
            elif status:
                with_status = select(Attachment.submission_id).where(
                    Attachment.parse_status == status
                )
                query = query.where(Submission.id.in_(with_status))
            ids = list(session.scalars(query))
        before = Counter(
            session.scalars(
                select(Attachment.parse_status).where(Attachment.submission_id.in_(ids))
            )
        )
    click.echo(f"{len(ids)} submission(s) to re-read; attachments now: {_counts(before)}")
    if dry_run or not ids:
        return
    with _errors(), app.pipeline() as pipeline, _progress(len(ids), "Re-reading") as bar:
        pipeline.read(ids, bar.update)
    with app.sessions() as session:
        after = Counter(
            session.scalars(
                select(Attachment.parse_status).where(Attachment.submission_id.in_(ids))
            )
        )
        repo.audit(
            session,
            "reparse",
            None,
            f"{len(ids)} submission(s): {_counts(before)} -> {_counts(after)}",
            app.now(),
        )
        session.commit()
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
    if not app.settings.acks_on:
        click.echo(
            "acknowledgements are off: add an [smtp] section "
            "(and [ack] enabled = true) to send them",
            err=True,
        )
    wanted = [s for s, on in (("failed", failed), ("suppressed", suppressed)) if on]
    with _errors(), app.sessions() as session:
        for ack, reference in session.execute(repo.select_acks(wanted)):
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
    with _errors():
        with app.sessions() as session:
            submission = repo.get_by_reference(session, reference)
            ack = outbox.request_resend(
                session, submission, app.settings, app.now(), reason or "intake resend-ack"
            )
            repo.audit(session, "resend-ack", submission.reference, reason, app.now())
            session.commit()
            to_addr = ack.to_addr
        with app.pipeline() as pipeline:
            report = pipeline.send_acks()
    if report.errors:
        raise click.ClickException(
            f"not sent yet, will be retried by the next poll: {report.errors[0]}"
        )
    click.echo(f"{reference.upper()}: acknowledgement sent again to {to_addr}")


@cli.command()
@pass_ctx
def worker(state: _Context) -> None:
    """Run in the foreground: poll on a schedule, retry, send the daily digest.

    For systemd or a container. SIGTERM or Ctrl-C finishes the current batch of messages and
    stops; a second one stops at once.
    """
    from .scheduler import Worker  # APScheduler is only needed here

    with _errors():
        app = state.app
        app.engine  # noqa: B018 - fail now, not in the first job, if the database is wrong
        Worker(app).run()


@cli.command()
@pass_ctx
def status(state: _Context) -> None:
    """Health at a glance; exits 1 when the last poll failed or is overdue (for monitors)."""
    app = state.app
    with _errors(), app.sessions() as session:
        health = gather_health(session, app.settings, app.now())
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
            raise click.UsageError("sending needs an [smtp] section in the configuration")
        run = send_digest(app.sessions, app.settings, mailer, app.now, scheduled=False, since=start)
    click.echo(f"sent the {describe(run)}" if run else "nothing sent")


@cli.command()
@click.option(
    "--before",
    required=True,
    type=click.DateTime(["%Y-%m-%d"]),
    help="Purge responses received before this UK date.",
)
@click.option("--anonymise", is_flag=True, help="Also delete sender names, addresses and subjects.")
@click.option("--dry-run", is_flag=True, help="Say how many would be purged, change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
def purge(state: _Context, before: dt.datetime, anonymise: bool, dry_run: bool, yes: bool) -> None:
    """Delete the stored mail, files and texts of old responses (retention; audited)."""
    app = state.app
    cutoff = before.replace(tzinfo=UK).astimezone(dt.UTC)
    with _errors(), app.sessions() as session:
        ids = repo.purgeable(session, cutoff)
        click.echo(f"{len(ids)} response(s) received before {format_uk(cutoff)} would be purged")
        if dry_run or not ids:
            return
        if not yes:
            click.confirm("This cannot be undone. Purge them?", abort=True)
        repo.purge(session, ids, anonymise=anonymise)
        detail = f"{len(ids)} response(s) received before {cutoff.isoformat()}" + (
            ", anonymised" if anonymise else ""
        )
        repo.audit(session, "purge", None, detail, app.now())
        session.commit()
    click.echo(f"purged {len(ids)} response(s); the purge is recorded in the audit log")


@cli.command()
@pass_ctx
def check(state: _Context) -> None:
    """Sign in to IMAP and SMTP as configured and say what works (sends no mail)."""
    from .check import run_checks

    with _errors():
        settings = state.app.settings
    results = run_checks(settings)
    for result in results:
        click.echo(result.line())
    if not all(result.ok for result in results):
        click.echo("Fix what FAILED above, then run `intake check` again.", err=True)
        raise click.exceptions.Exit(1)


@cli.group("auth")
def auth_group() -> None:
    """OAuth2 sign-in for a Microsoft 365 or Google mailbox ([oauth2] section)."""


def _delegated(state: _Context) -> Any:
    from . import oauth

    with _errors():
        settings = state.app.settings
    o = settings.oauth2
    if o is None:
        raise click.UsageError("configuration: there is no [oauth2] section")
    if not o.delegated:
        how = "the command" if o.provider == "command" else "the app's own credentials"
        click.echo(f"[oauth2] uses {how}; nobody needs to sign in. Run `intake check` to test it.")
        raise click.exceptions.Exit(0)
    return o, oauth.TokenStore(state.app.sessions, o.encryption_key)


@auth_group.command("login")
@pass_ctx
def auth_login(state: _Context) -> None:
    """Sign in once as the mailbox (device code or browser); keeps the refresh token."""
    from . import oauth

    o, store = _delegated(state)
    with _errors():
        if o.flow == "device":
            code = oauth.start_device_code(o)
            click.echo(
                code.message
                or f"To sign in, open {code.verification_uri} and enter the code {code.user_code}"
            )
            click.echo(f"Sign in as {o.account}. Waiting for the sign-in to finish...")
            oauth.poll_device_code(o, store, code)
        else:
            request = oauth.start_authorization(o)
            click.echo(f"1. Open this address in a browser and sign in as {o.account}:\n")
            click.echo(f"{request.url}\n")
            click.echo(
                "2. Allow access. The browser then goes to an address starting with "
                f"{o.redirect_uri} (it may say the page cannot be reached; that is expected). "
                "Copy that whole address from the address bar."
            )
            pasted = click.prompt("3. Paste it here (or just the code)")
            oauth.finish_authorization(o, store, request, pasted)
    click.echo(
        f"Signed in: the refresh token for {o.account} is stored, encrypted. "
        "Run `intake check` to test IMAP and SMTP."
    )


@auth_group.command("status")
@pass_ctx
def auth_status(state: _Context) -> None:
    """Say whether a sign-in is stored, and when it was last renewed."""
    o, store = _delegated(state)
    with _errors():
        updated = store.updated_at(o)
    if updated is None:
        click.echo(f"No sign-in stored for {o.account}: run `intake auth login`.")
        raise click.exceptions.Exit(1)
    click.echo(f"Sign-in for {o.account} stored; refresh token last renewed {format_uk(updated)}.")


@auth_group.command("logout")
@pass_ctx
def auth_logout(state: _Context) -> None:
    """Delete the stored sign-in (revoke the app's access at the provider as well)."""
    o, store = _delegated(state)
    with _errors():
        deleted = store.delete(o)
    click.echo(f"Deleted the stored sign-in for {o.account}." if deleted else "Nothing stored.")


@auth_group.command("new-key")
def auth_new_key() -> None:
    """Print a new encryption key for $INTAKE_TOKEN_KEY (keep it secret, like a password)."""
    from .oauth import new_key

    click.echo(new_key())


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "none"


@cli.group("db")
def db_group() -> None:
    """Manage the database schema."""


@db_group.command("upgrade")
@pass_ctx
def db_upgrade(state: _Context) -> None:
    """Create or upgrade the schema to this version (back up first)."""
    with _errors():
        engine = db.make_engine(state.app.settings.database.connect_url)
        try:
            db.upgrade(engine)
            click.echo(f"schema at {db.current_revision(engine)}")
        finally:
            engine.dispose()


def main() -> None:
    """Entry point of the ``intake`` console script."""
    cli(prog_name="intake")
