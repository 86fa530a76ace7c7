"""``intake purge`` and ``intake erase``: retention by date and one person's erasure."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import click

from ..deadline import UK
from .root import _Context, _errors

if TYPE_CHECKING:
    from ..staff.erasure import ErasurePlan, ErasureReport

__all__ = ["erase_command", "purge"]

_SHOWN = 20  # references listed by --dry-run


def _show(plan: ErasurePlan, verb: str) -> None:
    refs = ", ".join(plan.references[:_SHOWN])
    more = f" and {len(plan.references) - _SHOWN} more" if len(plan.references) > _SHOWN else ""
    click.echo(
        f"{len(plan.ids)} submission(s) {plan.what} {verb}" + (f": {refs}{more}" if refs else "")
    )


def _run(state: _Context, plan: ErasurePlan, action: str, yes: bool) -> ErasureReport:
    from ..staff.erasure import erase

    if not yes:
        click.confirm("This cannot be undone. Go ahead?", abort=True)
    app = state.app
    report = erase(app.sessions, app.engine, plan, app.now(), action=action)
    click.echo(f"{action}: {report.summary()}; recorded in the audit log (counts only)")
    if not report.settled:
        click.echo(
            "warning: the database was busy, so old copies may remain in its write-ahead log "
            "until it is checkpointed; run the command again when the worker is idle",
            err=True,
        )
    return report


@click.command()
@click.option(
    "--before",
    required=True,
    type=click.DateTime(["%Y-%m-%d"]),
    help="Purge submissions dated before this UK date (read, failed or never read).",
)
@click.option("--anonymise", is_flag=True, help="Also erase names, addresses and subjects.")
@click.option("--dry-run", is_flag=True, help="List what would be purged, change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def purge(state: _Context, before: dt.datetime, anonymise: bool, dry_run: bool, yes: bool) -> None:
    """Erase the stored mail, files and texts of old submissions (retention; audited).

    Acknowledgements not yet sent are cancelled. See SECURITY.md for exactly what goes.
    """
    cutoff = before.replace(tzinfo=UK).astimezone(dt.UTC)
    with _errors():
        app = state.app
        from ..staff.erasure import plan_purge

        with app.sessions() as session:
            plan = plan_purge(session, cutoff, anonymise=anonymise)
        _show(plan, "would be purged" if dry_run or not plan.ids else "to purge")
        if dry_run or not plan.ids:
            return
        _run(state, plan, "purge", yes)


@click.command("erase")
@click.option("--sender", required=True, metavar="ADDRESS", help="The person's email address.")
@click.option(
    "--reference",
    "references",
    multiple=True,
    metavar="REF",
    help="Also erase this submission (e.g. their response forwarded by someone else).",
)
@click.option("--dry-run", is_flag=True, help="List what would be erased, change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def erase_command(
    state: _Context, sender: str, references: tuple[str, ...], dry_run: bool, yes: bool
) -> None:
    """Erase everything held about one person (UK GDPR Article 17 request; audited).

    Their submissions, acknowledgements to them and bounces of those lose their mail,
    files, texts, names and addresses; acknowledgements not yet sent are cancelled.
    """
    if "@" not in sender:
        raise click.UsageError("--sender: give the person's email address, e.g. jane@example.org")
    with _errors():
        app = state.app
        from ..staff.erasure import plan_sender

        with app.sessions() as session:
            plan = plan_sender(session, sender, references)
        _show(plan, "would be erased" if dry_run or not plan.ids else "to erase")
        if plan.mentioned_in:
            click.echo(
                "mentioned, but not erased, in: "
                + ", ".join(plan.mentioned_in)
                + " (someone else's response may quote them; add --reference REF to erase one)"
            )
        if dry_run or not plan.ids:
            return
        _run(state, plan, "erase", yes)
