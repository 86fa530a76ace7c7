"""The pages staff read: dashboard, list, one response, its files, search, work queue."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from store import browse, repo, tags, work
from store import users as user_store
from store.errors import NotFound
from store.models import AckStatus, Submission, SubmissionStatus

from ..analysis.respondent import RESPONDENT_TYPES
from ..deadline import UK
from ..mail.mime import read_message
from ..staff import finder
from ..staff.health import Health
from .auth import Viewer
from .base import REFERENCE, Web, page

__all__ = [
    "attention",
    "dashboard",
    "detail",
    "download",
    "healthz",
    "question",
    "questions",
    "search",
    "submissions",
]

PAGE_SIZE = 50
COUNTS_TTL_S = 30.0
CHART_DAYS = 30
TIMELINESS = {"on_time": "on time", "late": "late", "sent_in_time": "late, sent in time"}
HOW_DECIDED = {
    "internaldate": "the time our mail server stored it (IMAP INTERNALDATE)",
    "received_header": "the newest Received header our mail server added",
    "date_header": "the sender's own Date header (no server time was available)",
    "fetched_at": "the time this program fetched it (no other time was available)",
}
DONE = {
    "reparsed": "Read again from the stored message.",
    "resent": "The acknowledgement was queued again.",
    "timeliness": "On time / late was set, with your reason.",
    "not-response": "Filed as not a response: it no longer counts.",
    "note": "Your note was added.",
    "tag": "Your decision on the passage was kept; re-runs will not change it.",
    "respondent": "The respondent was set; re-runs will not change it.",
}
EVIDENCE_PAGE = 100


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


def _day(value: str, field: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{field}: use a date such as 2018-07-27") from None


def _uk_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=UK).astimezone(dt.UTC)


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return max(1, min(int(raw), 100_000)) if raw.isdigit() else 1


@dataclass(frozen=True)
class _Bar:
    x: int
    y: int
    height: int
    day: dt.date
    count: int


@page()
def dashboard(web: Web, request: Request, viewer: Viewer) -> Response:
    app = web.app
    now = app.now()
    today = now.astimezone(UK).date()
    days = [today - dt.timedelta(days=n) for n in range(CHART_DAYS - 1, -1, -1)]
    windows = [(_uk_midnight(d), _uk_midnight(d + dt.timedelta(days=1))) for d in days]
    with app.sessions() as session:
        counts = web.cached("filter_counts", COUNTS_TTL_S, lambda: browse.filter_counts(session))
        health = Health(
            settings=app.settings,
            now=now,
            last_ok=repo.last_poll_run(session, ok=True),
            last=repo.last_poll_run(session),
            timeliness={k: v for k, v in counts["timeliness"].items() if k != "sent_in_time"},
            statuses=counts["status"],
            acks=repo.ack_counts(session),
            digest=repo.last_sent_digest(session),
            stages=work.stage_counts(session),
            failed_stages=work.failed_stages(session),
            unfetched=work.unfetched(session),
        )
        per_day = browse.arrivals_per_day(session, windows)
    top = max(per_day) if per_day else 0
    bars = [
        _Bar(x=n * 20, y=150 - h, height=h, day=d, count=c)
        for n, (d, c) in enumerate(zip(days, per_day, strict=True))
        for h in [round(140 * c / top) if top else 0]
    ]
    cutoff = app.cutoff
    return web.render(
        request,
        "dashboard.html",
        health=health,
        total=sum(health.timeliness.values()),
        bars=bars,
        top=top,
        cutoff=cutoff,
        days_left=(cutoff.astimezone(UK).date() - today).days,
        closed=now > cutoff,
    )


@page()
def submissions(web: Web, request: Request, viewer: Viewer) -> Response:
    params = request.query_params
    problems: list[str] = []
    timeliness = params.get("timeliness", "")
    status = params.get("status", "")
    ack = params.get("ack", "")
    unreadable = params.get("unreadable") == "1"
    if timeliness not in ("", *TIMELINESS):
        problems.append(f"timeliness: unknown choice {timeliness!r}")
        timeliness = ""
    if status not in ("", *[s.value for s in SubmissionStatus]):
        problems.append(f"status: unknown choice {status!r}")
        status = ""
    if ack not in ("", *[s.value for s in AckStatus]):
        problems.append(f"acknowledgement: unknown choice {ack!r}")
        ack = ""
    since = until = None
    try:
        start = _day(params.get("from", ""), "from")
        end = _day(params.get("to", ""), "to")
        since = _uk_midnight(start) if start else None
        until = _uk_midnight(end + dt.timedelta(days=1)) if end else None
    except ValueError as exc:
        problems.append(str(exc))
    wanted = browse.ListFilter(
        timeliness=timeliness or None,
        status=status or None,
        unreadable=unreadable,
        ack_status=ack or None,
        since=since,
        until=until,
    )
    number = _page_number(request)
    with web.app.sessions() as session:
        rows, total = browse.list_page(
            session, wanted, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
        )
        # The counts beside each choice may lag by up to COUNTS_TTL_S; the total is exact.
        counts = web.cached("filter_counts", COUNTS_TTL_S, lambda: browse.filter_counts(session))
    kept = {k: v for k, v in params.items() if k != "page" and v}
    pages = max(1, -(-total // PAGE_SIZE))
    return web.render(
        request,
        "submissions.html",
        rows=rows,
        total=total,
        counts=counts,
        problems=problems,
        chosen={
            "timeliness": timeliness,
            "status": status,
            "ack": ack,
            "unreadable": unreadable,
            "from": params.get("from", ""),
            "to": params.get("to", ""),
        },
        timeliness_names=TIMELINESS,
        statuses=[s.value for s in SubmissionStatus],
        ack_statuses=[s.value for s in AckStatus],
        number=number,
        pages=pages,
        prev_link="?" + urlencode({**kept, "page": number - 1}) if number > 1 else "",
        next_link="?" + urlencode({**kept, "page": number + 1}) if number < pages else "",
    )


def _submission(session: Session, reference: str) -> Submission | None:
    if not REFERENCE.match(reference):
        return None
    try:
        return repo.get_by_reference(session, reference)
    except NotFound:
        return None


@page()
def detail(web: Web, request: Request, viewer: Viewer) -> Response:
    reference = request.path_params["reference"]
    with web.app.sessions() as session:
        sub = _submission(session, reference)
        if sub is None:
            return web.error(request, 404, f"No response has the reference {reference}.")
        acks = browse.acks_of(session, sub.id)
        trail = browse.audit_trail(session, sub.reference or "")
        notes = user_store.notes_for(session, sub.id)
        attachments = list(sub.attachments)
        passages = tags.passages_of(session, sub.id)
        profile = tags.respondent_of(session, sub.id)
    return web.render(
        request,
        "detail.html",
        sub=sub,
        attachments=attachments,
        acks=acks,
        trail=trail,
        notes=notes,
        passages=passages,
        profile=profile,
        evidence=json.loads(profile.evidence) if profile is not None else [],
        questions={q.key: q.title for q in web.app.settings.questions},
        respondent_types=RESPONDENT_TYPES,
        how_decided=HOW_DECIDED.get(sub.received_at_source or "", "unknown"),
        cutoff=web.app.cutoff,
        done=DONE.get(request.query_params.get("done", ""), ""),
    )


def _content_disposition(filename: str) -> str:
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", filename)[:150] or "attachment"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


@page()
def download(web: Web, request: Request, viewer: Viewer) -> Response:
    """The original file, byte for byte, taken from the stored message; never shown inline."""
    reference = request.path_params["reference"]
    position = request.path_params["n"]
    limits = web.app.settings.limits
    with web.app.sessions() as session:
        sub = _submission(session, reference)
        wanted = next((a for a in sub.attachments if a.position == position), None) if sub else None
        if sub is None or wanted is None:
            return web.error(request, 404, f"{reference} has no file number {position}.")
        if sub.status == SubmissionStatus.PURGED:
            return web.error(request, 410, "This file was deleted under the retention policy.")
        raw = repo.load_raw(session, sub.id)
    _, parts = read_message(
        raw, sub.sha256, max_depth=limits.max_nesting_depth, max_parts=limits.max_parts
    )
    part = next((p for p in parts if p.position == position), None)
    if part is None or hashlib.sha256(part.data).hexdigest() != wanted.sha256:
        return web.error(
            request, 409, "The stored message no longer gives this file; read it again first."
        )
    return Response(
        part.data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": _content_disposition(wanted.filename)},
    )


@page()
def search(web: Web, request: Request, viewer: Viewer) -> Response:
    query = request.query_params.get("q", "").replace("\x00", "").strip()[:500]
    number = _page_number(request)
    hits: list[finder.Hit] = []
    if query:
        with web.app.sessions() as session:
            hits = finder.find(session, query, limit=21, offset=(number - 1) * 20)
    more = len(hits) > 20
    return web.render(
        request,
        "search.html",
        query=query,
        hits=hits[:20],
        number=number,
        prev_link="?" + urlencode({"q": query, "page": number - 1}) if number > 1 else "",
        next_link="?" + urlencode({"q": query, "page": number + 1}) if more else "",
    )


@page()
def attention(web: Web, request: Request, viewer: Viewer) -> Response:
    with web.app.sessions() as session:
        queue = browse.attention_rows(session)
        last = repo.last_poll_run(session)
    return web.render(
        request,
        "attention.html",
        queue=queue,
        inbox_error=last if last is not None and last.ok is False else None,
        count=sum(len(rows) for rows in queue.values()),
    )


@page()
def questions(web: Web, request: Request, viewer: Viewer) -> Response:
    with web.app.sessions() as session:
        counts = tags.question_counts(session)
        kinds = tags.type_counts(session)
    return web.render(
        request,
        "questions.html",
        questions=web.app.settings.questions,
        counts=counts,
        kinds=sorted(kinds.items(), key=lambda item: (-item[1], item[0])),
    )


@page()
def question(web: Web, request: Request, viewer: Viewer) -> Response:
    key = request.path_params["key"]
    found = [q for q in web.app.settings.questions if q.key == key]
    if not found:
        return web.error(request, 404, "There is no such question. The list is under Questions.")
    number = _page_number(request)
    with web.app.sessions() as session:
        total = tags.evidence_count(session, key)
        rows = tags.evidence_rows(
            session, key, limit=EVIDENCE_PAGE, offset=(number - 1) * EVIDENCE_PAGE
        )
    pages = max(1, -(-total // EVIDENCE_PAGE))
    return web.render(
        request,
        "question.html",
        question=found[0],
        rows=rows,
        total=total,
        number=number,
        pages=pages,
        prev_link=f"?page={number - 1}" if number > 1 else "",
        next_link=f"?page={number + 1}" if number < pages else "",
    )
