"""``intake web`` (serve the staff web view) and ``intake users`` (its accounts)."""

from __future__ import annotations

import sys

import click

__all__ = ["users_group", "web"]

# The roles of store.users.ROLES, written out so that `intake users add --help` needs no
# database layer (a test checks the two agree).
_ROLES = ("staff", "admin")


def _state(ctx: click.Context) -> object:
    return ctx.find_root().obj


@click.command()
@click.option("--host", help="Address to listen on [default: [web] host, 127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), help="Port [default: [web] port, 8080].")
@click.pass_context
def web(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the staff web view (put it behind a reverse proxy with TLS)."""
    from .root import _errors

    with _errors():
        app = _state(ctx).app  # type: ignore[attr-defined]
        import uvicorn

        from ..web import create_app

        settings = app.settings.web
        asgi = create_app(app)
    where = f"http://{host or settings.host}:{port or settings.port}/"
    click.echo(f"Staff web view on {where} (Ctrl-C stops it)", err=True)
    # proxy_headers: the scheme and client address come from the reverse proxy in front
    # (only from 127.0.0.1 by default), so cookies are Secure behind TLS.
    uvicorn.run(
        asgi,
        host=host or settings.host,
        port=port or settings.port,
        proxy_headers=True,
        server_header=False,
        log_level="info",
    )


@click.group("users")
def users_group() -> None:
    """Staff accounts for the web view."""


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 12:
        raise click.UsageError("the password must be at least 12 characters long")
    return str(password)


_STDIN = click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (one line)."
)


@users_group.command("add")
@click.argument("email")
@click.option(
    "--role",
    type=click.Choice(_ROLES),
    default="staff",
    show_default=True,
    help="admin: may also reparse, resend, set on time/late, mark not a response.",
)
@_STDIN
@click.pass_context
def users_add(ctx: click.Context, email: str, role: str, password_stdin: bool) -> None:
    """Add a staff account (asks for its password)."""
    from .root import _errors

    if "@" not in email:
        raise click.UsageError(f"{email!r} is not an email address")
    password = _read_password(password_stdin)
    with _errors():
        app = _state(ctx).app  # type: ignore[attr-defined]
        from store import users as user_store

        from ..web.auth import hash_password

        with app.sessions() as session:
            try:
                user_store.add_user(session, email, role, hash_password(password), app.now())
            except ValueError as exc:
                raise click.ClickException(str(exc)) from exc
            session.commit()
    click.echo(f"added {email.strip().lower()} ({role})")


@users_group.command("list")
@click.pass_context
def users_list(ctx: click.Context) -> None:
    """List the accounts and their roles."""
    from ..deadline import format_uk
    from .root import _errors

    with _errors():
        app = _state(ctx).app  # type: ignore[attr-defined]
        from store import users as user_store

        with app.sessions() as session:
            found = user_store.list_users(session)
    if not found:
        click.echo("no accounts yet: add one with `intake users add EMAIL --role admin`")
    for user in found:
        last = format_uk(user.last_login_at) if user.last_login_at else "never signed in"
        click.echo(f"{user.email:<40} {user.role:<6} {last}")


@users_group.command("remove")
@click.argument("email")
@click.pass_context
def users_remove(ctx: click.Context, email: str) -> None:
    """Remove an account (its sessions end at once)."""
    from .root import _errors

    with _errors():
        app = _state(ctx).app  # type: ignore[attr-defined]
        from store import users as user_store
        from store.errors import NotFound

        with app.sessions() as session:
            try:
                user_store.remove_user(session, email)
            except NotFound as exc:
                raise click.ClickException(str(exc)) from exc
            session.commit()
    click.echo(f"removed {email.strip().lower()}")


@users_group.command("reset")
@click.argument("email")
@_STDIN
@click.pass_context
def users_reset(ctx: click.Context, email: str, password_stdin: bool) -> None:
    """Set a new password (signs the account out everywhere)."""
    from .root import _errors

    password = _read_password(password_stdin)
    with _errors():
        app = _state(ctx).app  # type: ignore[attr-defined]
        from store import users as user_store
        from store.errors import NotFound

        from ..web.auth import hash_password

        with app.sessions() as session:
            try:
                user_store.set_password(session, email, hash_password(password))
            except NotFound as exc:
                raise click.ClickException(str(exc)) from exc
            session.commit()
    click.echo(f"new password set for {email.strip().lower()}; its sessions have ended")
