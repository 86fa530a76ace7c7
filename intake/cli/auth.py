"""``intake auth``: sign in once as the mailbox (OAuth2), see the sign-in, forget it."""

from __future__ import annotations

from typing import Any

import click

from ..deadline import format_uk
from ..errors import ConfigError
from .root import _Context, _errors, pass_ctx

__all__ = ["auth_group"]


@click.group("auth")
def auth_group() -> None:
    """OAuth2 sign-in for a Microsoft 365 or Google mailbox ([oauth2] section)."""


def _delegated(state: _Context) -> Any:
    with _errors():
        settings = state.app.settings
    o = settings.oauth2
    if o is None:
        raise ConfigError(
            "[oauth2]: there is no [oauth2] section; see the README for Microsoft 365 and Gmail"
        )
    if not o.delegated:
        how = "the command" if o.provider == "command" else "the app's own credentials"
        click.echo(f"[oauth2] uses {how}; nobody needs to sign in. Run `intake check` to test it.")
        raise click.exceptions.Exit(0)
    from ..mail import oauth

    return o, oauth.TokenStore(state.app.sessions, o.encryption_key)


@auth_group.command("login")
@pass_ctx
def auth_login(state: _Context) -> None:
    """Sign in once as the mailbox (device code or browser); keeps the refresh token."""
    o, store = _delegated(state)
    from ..mail import oauth

    with _errors():
        if o.flow == "device":
            code = oauth.start_device_code(o)
            click.echo(
                code.message
                or f"To sign in, open {code.verification_uri} and enter the code {code.user_code}"
            )
            click.echo(f"Sign in as {o.account}. Waiting for the sign-in to finish...")
            oauth.poll_device_code(o, store, code, sources=state.app.token_sources)
        else:
            request = oauth.start_authorization(o)
            click.echo(f"1. Open this address in a browser and sign in as {o.account}:\n")
            click.echo(f"{request.url}\n")
            click.echo(
                "2. Allow access. The browser then goes to an address starting with "
                f"{o.redirect_uri} (it may say the page cannot be reached; that is expected). "
                "Copy that whole address from the address bar."
            )
            pasted = click.prompt("3. Paste it here (or just the code)")
            oauth.finish_authorization(o, store, request, pasted, sources=state.app.token_sources)
    click.echo(
        f"Signed in: the refresh token for {o.account} is stored, encrypted. "
        "Run `intake check` to test IMAP and SMTP."
    )


@auth_group.command("status")
@pass_ctx
def auth_status(state: _Context) -> None:
    """Say whether a sign-in is stored, and when it was last renewed."""
    o, store = _delegated(state)
    with _errors():
        updated = store.updated_at(o)
    if updated is None:
        click.echo(f"No sign-in stored for {o.account}: run `intake auth login`.")
        raise click.exceptions.Exit(1)
    click.echo(f"Sign-in for {o.account} stored; refresh token last renewed {format_uk(updated)}.")


@auth_group.command("logout")
@pass_ctx
def auth_logout(state: _Context) -> None:
    """Delete the stored sign-in (revoke the app's access at the provider as well)."""
    o, store = _delegated(state)
    with _errors():
        deleted = store.delete(o)
    click.echo(f"Deleted the stored sign-in for {o.account}." if deleted else "Nothing stored.")


@auth_group.command("new-key")
def auth_new_key() -> None:
    """Print a new encryption key for $INTAKE_TOKEN_KEY (keep it secret, like a password)."""
    from ..mail.oauth import new_key

    click.echo(new_key())
