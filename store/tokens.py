"""The encrypted refresh tokens of delegated OAuth2 sign-ins (``oauth_tokens``).

A token is keyed by provider, client id and account (lower case). Encryption is the
caller's: these functions only read and write the row. Callers own the transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from .models import OAuthToken

__all__ = ["delete_token", "find_token", "put_token"]


def _key(provider: str, client_id: str, account: str) -> Any:
    return (
        (OAuthToken.provider == provider)
        & (OAuthToken.client_id == client_id)
        & (OAuthToken.account == account.lower())
    )


def find_token(session: Session, provider: str, client_id: str, account: str) -> OAuthToken | None:
    """The stored token row of one sign-in, or None."""
    return session.scalars(select(OAuthToken).where(_key(provider, client_id, account))).first()


def put_token(
    session: Session,
    provider: str,
    client_id: str,
    account: str,
    *,
    encrypted: str,
    now: dt.datetime,
) -> None:
    """Insert or update the token row of one sign-in (flushed at the caller's commit).

    Two processes inserting the same sign-in at once: the second commit raises
    ``IntegrityError``, and a retry finds and updates the first one's row.
    """
    row = find_token(session, provider, client_id, account)
    if row is None:
        row = OAuthToken(
            provider=provider, client_id=client_id, account=account.lower(), created_at=now
        )
        session.add(row)
    row.refresh_token_encrypted = encrypted
    row.updated_at = now


def delete_token(session: Session, provider: str, client_id: str, account: str) -> bool:
    """Delete the token row of one sign-in; whether there was one."""
    result = session.execute(delete(OAuthToken).where(_key(provider, client_id, account)))
    return bool(getattr(result, "rowcount", 0))
