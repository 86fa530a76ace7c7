"""Signing in and out, with rate limits per account and per address."""

from __future__ import annotations

import datetime as dt
import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from store import users as user_store

from .auth import PRE_COOKIE, SESSION_COOKIE, Viewer, check_password, same_token
from .base import Web, action, form_fields, page, safe_next

__all__ = ["login_form", "login_submit", "logout_form", "logout_submit"]


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _login_page(web: Web, request: Request, status: int = 200, message: str = "") -> Response:
    token = secrets.token_urlsafe(32)
    response = web.render(
        request,
        "login.html",
        status=status,
        viewer=None,
        csrf=token,
        message=message,
        next=safe_next(request.query_params.get("next")),
        email=request.query_params.get("email", ""),
    )
    response.set_cookie(
        PRE_COOKIE,
        web.signer.pre_cookie(token),
        max_age=3600,
        httponly=True,
        samesite="lax",
        secure=web.secure(request),
        path="/",
    )
    return response


async def login_form(request: Request) -> Response:
    web: Web = request.app.state.web
    if await run_in_threadpool(web.viewer, request) is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    return _login_page(web, request)


def _sign_in(web: Web, email: str, password: str, address: str) -> tuple[str | None, str]:
    """(session cookie, "") when signed in; (None, why not) otherwise."""
    settings = web.settings
    now = web.app.now()
    since = now - dt.timedelta(minutes=settings.failure_window_minutes)
    with web.app.sessions() as session:
        if (
            user_store.failures_since(session, since, email=email)
            >= settings.max_failures_per_account
            or user_store.failures_since(session, since, address=address)
            >= settings.max_failures_per_address
        ):
            user_store.record_attempt(session, email, address, False, now)
            session.commit()
            return None, (
                "Too many failed sign-ins. Wait "
                f"{settings.failure_window_minutes} minutes and try again, or ask an admin "
                "to reset your password."
            )
        user = user_store.find_user(session, email)
        ok = check_password(user, password)
        user_store.record_attempt(session, email, address, ok, now)
        if not ok or user is None:
            session.commit()
            return None, "The email address or password is wrong."
        user.last_login_at = now
        session.commit()
        return web.signer.session_cookie(user), ""


async def login_submit(request: Request) -> Response:
    web: Web = request.app.state.web
    form = await request.form()
    fields = form_fields(form)
    await form.close()
    expected = web.signer.read_pre(request.cookies.get(PRE_COOKIE)) or ""
    if not same_token(expected, fields.get("csrf", "")):
        return _login_page(web, request, 403, "The sign-in form had expired. Please sign in again.")
    email = fields.get("email", "").strip()[:320]
    password = fields.get("password", "")[:1000]
    if not email or not password:
        return _login_page(web, request, 400, "Enter your email address and password.")
    cookie, why = await run_in_threadpool(_sign_in, web, email, password, _address(request))
    if cookie is None:
        status = 429 if why.startswith("Too many") else 400
        return _login_page(web, request, status, why)
    response = RedirectResponse(safe_next(fields.get("next")), status_code=303)
    web.set_session(request, response, cookie)
    return response


@page()
def logout_form(web: Web, request: Request, viewer: object) -> Response:
    return web.render(request, "logout.html")


@action()
def logout_submit(web: Web, request: Request, viewer: Viewer, fields: dict[str, str]) -> Response:
    with web.app.sessions() as session:
        user_store.end_sessions(session, viewer.user_id)
        session.commit()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
