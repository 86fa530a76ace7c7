"""``intake classify``: file stored out-of-office replies as such, over every submission."""

from __future__ import annotations

import sys
from collections import Counter

import click

__all__ = ["classify_command"]


@click.command("classify")
@click.option("--dry-run", is_flag=True, help="Say what would change, change nothing.")
@click.pass_obj
def classify_command(state: object, dry_run: bool) -> None:
    """File automatic (out-of-office) replies apart from the responses, for all stored mail.

    New mail is classified as it is read; run this once after upgrading.
    """
    app = state.app  # type: ignore[attr-defined]
    from store import repo, selection
    from store.models import SubmissionKind

    from ..stages.classify import classify_many

    kinds = (SubmissionKind.RESPONSE, SubmissionKind.AUTO_REPLY)
    changed: Counter[str] = Counter()
    with app.sessions() as session:
        ids = selection.submission_ids(session, kinds=kinds)
        with click.progressbar(
            length=len(ids), label="Classifying", file=sys.stderr, show_pos=True
        ) as bar:
            for start in range(0, len(ids), 500):  # a few queries per 500
                chunk = ids[start : start + 500]
                for before, after in classify_many(session, chunk).values():
                    changed[f"{before} -> {after}"] += 1
                bar.update(len(chunk))
        if dry_run:
            session.rollback()
        else:
            if changed:
                detail = ", ".join(f"{k} {v}" for k, v in sorted(changed.items()))
                repo.audit(session, "classify", None, detail, app.now())
            session.commit()
    summary = ", ".join(f"{k}: {v}" for k, v in sorted(changed.items())) or "no changes"
    click.echo(f"{len(ids)} submission(s) looked at; {summary}" + (" (dry run)" if dry_run else ""))
