"""The ``intake search`` command: ranked full-text search over every response."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import TYPE_CHECKING

import click

from ..deadline import UK, format_uk
from ..mail.message import Timeliness
from .root import _Context, _errors, _progress

if TYPE_CHECKING:
    from ..staff import search as staff_search

__all__ = ["search"]

pass_ctx = click.make_pass_decorator(_Context)

_EPILOG = """\b
Query language (the same on SQLite and PostgreSQL):
  home care            both words (in the body or in one attached file)
  "home care"          the exact phrase
  care OR support      either word
  parking -library     leave out responses that mention library
  procure*             words that start with procure (3 letters or more)
Words match their other forms (council, councils) and accents are optional
(Sian finds Siân). Anything else you type is taken as plain words.

\b
Quote a phrase for the shell too; put -- before the query when a word starts
with - and could be read as an option (after --, nothing is an option):
  intake search '"home care"' -parking
  intake search -- -parking council
"""


# Unknown options are words, so -parking leaves out responses that mention parking;
# without the short -h, no exclusion can be read as an option ("-charges" held "-h").
_SETTINGS = {"ignore_unknown_options": True, "help_option_names": ["--help"]}


@click.command("search", epilog=_EPILOG, context_settings=_SETTINGS)
@click.argument("words", nargs=-1, metavar="QUERY...")
@click.option(
    "--limit",
    type=click.IntRange(1, 1000),
    default=20,
    show_default=True,
    help="How many responses to show.",
)
@click.option("--late", is_flag=True, help="Only responses received after the deadline.")
@click.option("--on-time", "on_time", is_flag=True, help="Only responses received in time.")
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M"]),
    help="Only responses received from this UK date (or date and time).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="One JSON array: reference, score, where, snippet and more.",
)
@click.option(
    "--rebuild",
    is_flag=True,
    help="Rebuild the index from the stored text (after an upgrade); no QUERY.",
)
@pass_ctx
def search(
    state: _Context,
    words: tuple[str, ...],
    limit: int,
    late: bool,
    on_time: bool,
    since: dt.datetime | None,
    as_json: bool,
    rebuild: bool,
) -> None:
    """Search every word of every response (body, attachments, subject, sender)."""
    query = " ".join(words)
    if rebuild:
        if query:
            raise click.UsageError("give either QUERY or --rebuild, not both")
        _rebuild(state)
        return
    if not query:
        raise click.UsageError('give what to search for, e.g. intake search "home care"')
    if late and on_time:
        raise click.UsageError("choose at most one of --late and --on-time")
    timeliness = Timeliness.LATE if late else Timeliness.ON_TIME if on_time else None
    start = since.replace(tzinfo=UK).astimezone(dt.UTC) if since else None
    app = state.app
    from ..staff import search as staff_search

    with _errors(), app.sessions() as session:
        hits = staff_search.search(session, query, limit=limit, timeliness=timeliness, since=start)
        total = staff_search.count(session, query, timeliness=timeliness, since=start)
        empty_index = not hits and staff_search.needs_rebuild(session)
    if as_json:
        sys.stdout.write(json.dumps([_record(hit) for hit in hits], ensure_ascii=False) + "\n")
    else:
        _print(hits, total)
    if empty_index:
        click.echo("The search index is empty: run `intake search --rebuild` once.", err=True)


def _record(hit: staff_search.SearchHit) -> dict[str, object]:
    return {
        "reference": hit.reference,
        "score": round(hit.score, 6),
        "where": hit.where,
        "snippet": hit.snippet.terminal(),
        "received_at": hit.received_at.isoformat() if hit.received_at else None,
        "received_at_uk": format_uk(hit.received_at) if hit.received_at else None,
        "sender_name": hit.sender_name,
        "sender_email": hit.sender_email,
        "subject": hit.subject,
        "timeliness": hit.timeliness,
    }


def _print(hits: list[staff_search.SearchHit], total: int) -> None:
    if not hits:
        click.echo("No response matches.")
        return
    from ..staff import search as staff_search

    click.echo(f"{total} response(s) match; the best {len(hits)}:")
    clean = staff_search.printable  # subjects, names and file names come from strangers
    for hit in hits:
        sender = clean(f"{hit.sender_name or ''} <{hit.sender_email or '-'}>")
        click.echo(
            f"\n{hit.reference}  {format_uk(hit.received_at)}  {hit.timeliness or '-'}  {sender}"
        )
        click.echo(f"  Subject: {clean(hit.subject or '')}")
        click.echo(f"  In {clean(hit.where)}: {hit.snippet.terminal()}")


def _rebuild(state: _Context) -> None:
    app = state.app
    from ..staff import search as staff_search

    with _errors():
        with app.sessions() as session:
            total = staff_search.indexable(session)
        with _progress(total, "Indexing") as bar:
            done = staff_search.rebuild(app.sessions, bar.update)
    click.echo(f"indexed {done} response(s)")
