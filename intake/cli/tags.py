"""Commands for what responses say: ``intake tag``, ``intake retag``, ``intake evidence``."""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..analysis.respondent import RESPONDENT_TYPES
from .root import usage_errors as _errors

if TYPE_CHECKING:
    from store.models import Submission

__all__ = ["evidence", "retag", "tag"]


def _pairs(values: tuple[str, ...], option: str, keys: set[str]) -> list[tuple[int, str]]:
    found = []
    for value in values:
        number, _, key = value.partition(":")
        if not number.isdigit() or not key:
            raise click.UsageError(f"{option} {value!r}: write PASSAGE:QUESTION, such as 3:b")
        if key not in keys:
            raise click.UsageError(
                f"{option} {value!r}: no question {key!r}; the questions are "
                + ", ".join(sorted(keys))
            )
        found.append((int(number), key))
    return found


def _show(session: Any, submission: Submission) -> None:
    from store import tags

    profile = tags.respondent_of(session, submission.id)
    if profile is not None:
        click.echo(
            f"{submission.reference}: {profile.respondent_type} ({profile.type_source}); "
            f"organisation: {profile.organisation or '-'} ({profile.organisation_source})"
        )
        for line in json.loads(profile.evidence):
            click.echo(f"  evidence: {line}")
    else:
        click.echo(
            f"{submission.reference}: not tagged yet (run `intake retag {submission.reference}`)"
        )
    for passage, found in tags.passages_of(session, submission.id):
        marks = ", ".join(
            f"{t.question_key}{'' if t.decision == tags.TAGGED else ' REJECTED'}"
            f" ({t.source}{f' {t.score:.2f}' if t.score is not None else ''})"
            for t in found
        )
        where = "body" if passage.source_name == "body" else passage.source_name
        text = " ".join(passage.text.split())
        click.echo(f"\n[{passage.seq}] {where}: {marks or 'no question'}")
        click.echo(f"    {text[:300]}{'...' if len(text) > 300 else ''}")
        for t in found:
            if t.reason:
                click.echo(f"    {t.question_key}: {t.reason[:300]}")


@click.command()
@click.argument("reference")
@click.option("--accept", multiple=True, metavar="N:KEY", help="Confirm passage N answers KEY.")
@click.option("--reject", multiple=True, metavar="N:KEY", help="Passage N does not answer KEY.")
@click.option("--add", multiple=True, metavar="N:KEY", help="Tag passage N with question KEY.")
@click.option(
    "--type", "kind", type=click.Choice(RESPONDENT_TYPES), help="Set the respondent type."
)
@click.option("--organisation", help='Set the organisation ("" for none).')
@click.option("--by", "who", default=None, help="Who decides [default: your login name].")
@click.pass_obj
def tag(
    state: Any,
    reference: str,
    accept: tuple[str, ...],
    reject: tuple[str, ...],
    add: tuple[str, ...],
    kind: str | None,
    organisation: str | None,
    who: str | None,
) -> None:
    """Show a response's passages and their questions, or record staff decisions.

    Without options it lists the numbered passages. Decisions are kept on every re-run.
    """
    app = state.app
    from store import repo, tags

    from ..staff import actions

    keys = {q.key for q in app.settings.questions}
    decisions = [
        actions.TagDecision(n, k, tags.TAGGED)
        for n, k in _pairs(accept, "--accept", keys) + _pairs(add, "--add", keys)
    ] + [actions.TagDecision(n, k, tags.REJECTED) for n, k in _pairs(reject, "--reject", keys)]
    with _errors():
        actions.decide_tags(
            app,
            reference,
            decisions,
            who or getpass.getuser(),
            kind=kind,
            organisation=organisation,
        )
    with _errors(), app.sessions() as session:
        submission = repo.get_by_reference(session, reference)
        _show(session, submission)


@click.command()
@click.argument("references", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every response that has been read.")
@click.pass_obj
def retag(state: Any, references: tuple[str, ...], all_: bool) -> None:
    """Cut, tag and classify responses again (staff decisions are kept)."""
    if not references and not all_:
        raise click.UsageError("name references, or use --all")
    app = state.app
    from store import repo, selection
    from store.models import SubmissionKind, SubmissionStatus

    from ..stages.tag import tag_submission

    with _errors(), app.sessions() as session:
        if all_:
            ids = selection.submission_ids(
                session, kinds=[SubmissionKind.RESPONSE], status=SubmissionStatus.PARSED
            )
        else:
            ids = [repo.get_by_reference(session, ref).id for ref in references]
        with click.progressbar(ids, label="Tagging", file=sys.stderr, show_pos=True) as bar:
            for count, submission_id in enumerate(bar, start=1):
                tag_submission(session, submission_id, app.settings, app.now())
                if count % 50 == 0:
                    session.commit()
        session.commit()
    click.echo(f"tagged {len(ids)} response(s)", err=True)


@click.command()
@click.option("--question", "key", required=True, help="The question's key, as in [[questions]].")
@click.option(
    "--format", "fmt", type=click.Choice(["md", "html", "docx"]), default="md", show_default=True
)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="File to write.",
)
@click.option("--link-base", default="", help="Address of the response pages; REF is appended.")
@click.pass_obj
def evidence(state: Any, key: str, fmt: str, output: Path, link_base: str) -> None:
    """Write the evidence pack for one question: every tagged passage, word for word."""
    app = state.app
    questions = {q.key: q for q in app.settings.questions}
    if key not in questions:
        known = ", ".join(questions) or "none: add [[questions]] to the configuration"
        raise click.UsageError(f"--question {key!r}: no such question; the questions are {known}")
    from ..staff.evidence import gather_pack, render_html, render_markdown, write_docx

    with _errors(), app.sessions() as session:
        pack = gather_pack(session, questions[key], app.settings.consultation.name, link_base)
    if fmt == "docx":
        write_docx(pack, output)
    else:
        text = render_markdown(pack) if fmt == "md" else render_html(pack)
        output.write_text(text, encoding="utf-8")
    click.echo(
        f"wrote {len(pack.rows)} passage(s) from {pack.responses} response(s) to {output}",
        err=True,
    )
