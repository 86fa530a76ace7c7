"""The staff web view: a Starlette application over the same database as the worker.

:func:`create_app` builds it from an :class:`~intake.app.App`; ``intake web`` serves it
with uvicorn. Pages are rendered on the server and work without JavaScript.
"""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..app import App
from . import changes, login, pages
from .auth import load_secret
from .base import Web
from .security import SecurityHeaders

__all__ = ["create_app"]

STATIC = Path(__file__).with_name("static")


def create_app(app: App) -> Starlette:
    """The ASGI application for ``app``'s settings and database."""
    secret = load_secret(app.settings.web, app.sessions, app.now())
    ref = "/submissions/{reference}"
    routes = [
        Route("/healthz", pages.healthz),
        Route("/login", login.login_form, methods=["GET"]),
        Route("/login", login.login_submit, methods=["POST"]),
        Route("/logout", login.logout_form, methods=["GET"]),
        Route("/logout", login.logout_submit, methods=["POST"]),
        Route("/", pages.dashboard),
        Route("/submissions", pages.submissions),
        Route(ref, pages.detail),
        Route(ref + "/files/{n:int}", pages.download),
        Route(ref + "/reparse", changes.reparse, methods=["POST"]),
        Route(ref + "/resend-ack", changes.resend_ack, methods=["POST"]),
        Route(ref + "/timeliness", changes.set_timeliness, methods=["POST"]),
        Route(ref + "/not-response", changes.mark_not_response, methods=["POST"]),
        Route(ref + "/notes", changes.add_note, methods=["POST"]),
        Route(ref + "/tags", changes.decide_tag, methods=["POST"]),
        Route(ref + "/respondent", changes.set_respondent, methods=["POST"]),
        Route("/questions", pages.questions),
        Route("/questions/{key}", pages.question),
        Route("/search", pages.search),
        Route("/attention", pages.attention),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    asgi = Starlette(routes=routes)
    asgi.state.web = Web(app, secret)
    asgi.add_middleware(SecurityHeaders)
    return asgi
