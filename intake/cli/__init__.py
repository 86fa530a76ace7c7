"""The ``intake`` command line: a thin shell over the worker, the stages and the staff actions.

``root`` holds the group, its context and error handling, and the core commands; each
other module holds one group of commands and is registered here, so no module of the
command line imports this one.
"""

from __future__ import annotations

from .auth import auth_group
from .campaigns import campaigns_group
from .classify import classify_command
from .db import db_group
from .erasure import erase_command, purge
from .root import cli
from .search import search as search_command
from .tags import evidence, retag, tag
from .web import users_group
from .web import web as web_command

__all__ = ["cli", "main"]

for _command in (
    auth_group,
    db_group,
    purge,
    erase_command,
    campaigns_group,
    classify_command,
    search_command,
    tag,
    retag,
    evidence,
    web_command,
    users_group,
):
    cli.add_command(_command)


def main() -> None:
    """Entry point of the ``intake`` console script."""
    cli(prog_name="intake")
