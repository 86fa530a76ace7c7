"""The changes staff make from the browser: admin fixes and private notes.

Each is a thin call into :mod:`intake.staff.actions`, which audits it with the
signed-in person's address; errors a person can fix come back as one sentence.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from store.errors import StoreError

from ..errors import IntakeError
from ..staff import actions
from .auth import Viewer
from .base import REFERENCE, Web, action

__all__ = [
    "add_note",
    "decide_tag",
    "mark_not_response",
    "reparse",
    "resend_ack",
    "set_respondent",
    "set_timeliness",
]


def _run(web: Web, request: Request, done: str, work: Callable[[str], None]) -> Response:
    reference = str(request.path_params["reference"]).upper()
    if not REFERENCE.match(reference):
        return web.error(request, 404, "No response has that reference.")
    try:
        work(reference)
    except (IntakeError, StoreError) as exc:
        return web.error(request, 400, f"{reference}: {exc}")
    return RedirectResponse(f"/submissions/{reference}?done={done}", status_code=303)


@action("admin")
def reparse(web: Web, request: Request, viewer: Viewer, fields: dict[str, str]) -> Response:
    def work(reference: str) -> None:
        ids, before = actions.reparse_ids(web.app, [reference])
        actions.reparse(web.app, ids, before, who=viewer.email, reference=reference)

    return _run(web, request, "reparsed", work)


@action("admin")
def resend_ack(web: Web, request: Request, viewer: Viewer, fields: dict[str, str]) -> Response:
    def work(reference: str) -> None:
        actions.resend_ack(web.app, reference, fields.get("reason", "")[:1000], who=viewer.email)

    return _run(web, request, "resent", work)


@action("admin")
def set_timeliness(web: Web, request: Request, viewer: Viewer, fields: dict[str, str]) -> Response:
    def work(reference: str) -> None:
        actions.set_timeliness(
            web.app,
            reference,
            fields.get("timeliness", ""),
            fields.get("reason", "")[:2000],
            who=viewer.email,
        )

    return _run(web, request, "timeliness", work)


@action("admin")
def mark_not_response(
    web: Web, request: Request, viewer: Viewer, fields: dict[str, str]
) -> Response:
    def work(reference: str) -> None:
        actions.mark_not_response(
            web.app, reference, fields.get("reason", "")[:2000], who=viewer.email
        )

    return _run(web, request, "not-response", work)


@action()
def add_note(web: Web, request: Request, viewer: Viewer, fields: dict[str, str]) -> Response:
    def work(reference: str) -> None:
        actions.add_note(web.app, reference, fields.get("text", ""), viewer.email)

    return _run(web, request, "note", work)


@action()
def decide_tag(web: Web, request: Request, viewer: Viewer, fields: dict[str, str]) -> Response:
    """A member of staff confirms or rejects one passage's question (or adds one)."""

    def work(reference: str) -> None:
        passage = fields.get("passage", "")
        if not passage.isdigit() or len(passage) > 9:
            raise actions.ActionRefused("choose a passage by its number")
        decision = actions.TagDecision(
            int(passage), fields.get("question", "")[:50], fields.get("decision", "")[:20]
        )
        actions.decide_tags(web.app, reference, [decision], viewer.email)

    return _run(web, request, "tag", work)


@action()
def set_respondent(web: Web, request: Request, viewer: Viewer, fields: dict[str, str]) -> Response:
    """A member of staff sets who responded: the respondent type and the organisation."""

    def work(reference: str) -> None:
        actions.decide_tags(
            web.app,
            reference,
            [],
            viewer.email,
            kind=fields.get("kind") or None,
            organisation=fields.get("organisation", "")[:300],
        )

    return _run(web, request, "respondent", work)
