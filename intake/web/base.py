"""The web view's shared plumbing: its state, page rendering, and the two guards.

``@page`` pages need a signed-in person (and a role); ``@action`` posts also need the
form's CSRF token. Both run the handler in a worker thread, since the store is
synchronous, and both check the role on the server for every request.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from store import users as user_store

from ..app import App
from ..deadline import format_uk
from .auth import PRE_COOKIE, SESSION_COOKIE, Signer, Viewer, same_token, viewer_for

__all__ = ["REFERENCE", "Web", "action", "form_fields", "page", "safe_next"]

TEMPLATES = Path(__file__).with_name("templates")
REFERENCE = re.compile(r"^[A-Za-z0-9]{1,10}-\d{1,12}$")
_LOCAL_PATH = re.compile(r"^/(?![/\\])[\x21-\x7e]*$")

Handler = Callable[..., Response]
Endpoint = Callable[[Request], Awaitable[Response]]


def form_fields(form: Any) -> dict[str, str]:
    """A form's text fields, without NUL characters (PostgreSQL refuses them in text)."""
    return {
        str(key): value.replace("\x00", "")
        for key, value in form.multi_items()
        if isinstance(value, str)
    }


def safe_next(value: str | None) -> str:
    """A local path to go back to after signing in (never another site)."""
    return value if value and _LOCAL_PATH.match(value) else "/"


def _uk(value: dt.datetime | None) -> str:
    return format_uk(value)


class Web:
    """What every request needs: the App, the cookie signer and the templates."""

    def __init__(self, app: App, secret: str) -> None:
        self.app = app
        self.settings = app.settings.web
        self.signer = Signer(secret, int(self.settings.session_hours * 3600))
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        self.env.filters["uk"] = _uk
        self.env.globals["consultation"] = app.settings.consultation.name
        self._cache: dict[str, tuple[float, Any]] = {}
        self._cache_lock = threading.Lock()

    def cached(self, key: str, seconds: float, make: Callable[[], Any]) -> Any:
        """``make()``, remembered for ``seconds`` (counts that may lag a little)."""
        now = time.monotonic()
        with self._cache_lock:
            found = self._cache.get(key)
            if found is not None and now - found[0] < seconds:
                return found[1]
        value = make()
        with self._cache_lock:
            self._cache[key] = (now, value)
        return value

    def render(
        self, request: Request, name: str, status: int = 200, **context: Any
    ) -> HTMLResponse:
        viewer: Viewer | None = getattr(request.state, "viewer", None)
        context.setdefault("viewer", viewer)
        context.setdefault("csrf", viewer.csrf if viewer else "")
        context.setdefault("path", request.url.path)
        html = self.env.get_template(name).render(**context)
        return HTMLResponse(html, status_code=status)

    def error(self, request: Request, status: int, message: str) -> HTMLResponse:
        return self.render(request, "error.html", status=status, message=message)

    def secure(self, request: Request) -> bool:
        mode = self.settings.secure_cookies
        return mode == "always" or (mode == "auto" and request.url.scheme == "https")

    def set_session(self, request: Request, response: Response, cookie: str) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            cookie,
            max_age=self.signer.max_age_s,
            httponly=True,
            samesite="lax",
            secure=self.secure(request),
            path="/",
        )
        response.delete_cookie(PRE_COOKIE, path="/")

    def viewer(self, request: Request) -> Viewer | None:
        """The signed-in person (session cookie, or the SSO proxy's header when trusted)."""
        read = self.signer.read_session(request.cookies.get(SESSION_COOKIE))
        with self.app.sessions() as session:
            viewer = viewer_for(session, read)
            header = self.settings.trusted_user_header
            if not header:
                return viewer
            email = request.headers.get(header, "").strip().lower()
            if not email:
                return viewer
            if viewer is not None and viewer.email == email:
                return viewer
            user = user_store.find_user(session, email)
            if user is None:
                return None
            cookie = self.signer.session_cookie(user)
            request.state.new_session = cookie
            fresh = viewer_for(session, self.signer.read_session(cookie))
            return fresh


def _to_login(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


async def _guard(request: Request, role: str) -> Viewer | Response:
    web: Web = request.app.state.web
    viewer = await run_in_threadpool(web.viewer, request)
    if viewer is None:
        return _to_login(request)
    request.state.viewer = viewer
    if role == "admin" and not viewer.is_admin:
        return web.error(request, 403, "Only an admin can do this. Ask an admin to do it.")
    return viewer


def _finish(request: Request, response: Response) -> Response:
    cookie = getattr(request.state, "new_session", None)
    if cookie:
        request.app.state.web.set_session(request, response, cookie)
    return response


def page(role: str = "staff") -> Callable[[Handler], Endpoint]:
    """A page for signed-in staff (or admins only); others go to /login."""

    def wrap(handler: Handler) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            viewer = await _guard(request, role)
            if isinstance(viewer, Response):
                return viewer
            web: Web = request.app.state.web
            response = await run_in_threadpool(handler, web, request, viewer)
            return _finish(request, response)

        endpoint.__name__ = handler.__name__
        return endpoint

    return wrap


def action(role: str = "staff") -> Callable[[Handler], Endpoint]:
    """A POST that changes something: signed in, the right role, and a valid CSRF token."""

    def wrap(handler: Handler) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            form = await request.form()
            fields = form_fields(form)
            await form.close()
            viewer = await _guard(request, "staff")
            if isinstance(viewer, Response):
                return viewer
            web: Web = request.app.state.web
            if not same_token(viewer.csrf, fields.get("csrf", "")):
                return web.error(
                    request,
                    403,
                    "This form had expired or did not come from this site. "
                    "Go back, reload the page and try again.",
                )
            if role == "admin" and not viewer.is_admin:
                return web.error(request, 403, "Only an admin can do this. Ask an admin to do it.")
            response = await run_in_threadpool(handler, web, request, viewer, fields)
            return _finish(request, response)

        endpoint.__name__ = handler.__name__
        return endpoint

    return wrap
