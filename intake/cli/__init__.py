"""The ``intake`` command line: a thin shell over the worker, the stages and the staff actions.

``root`` holds the group, its context and error handling, and the core commands; each
other module holds one group of commands and is registered here, so no module of the
command line imports this one.
"""

from __future__ import annotations

import gc

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
    try:
        cli(prog_name="intake")
    finally:
        # The command has closed what it opened. Whatever objects are left go with the
        # process: freezing them spares the interpreter's last scan of the whole heap
        # at exit (about 0.2 s after a command that loaded the database models).
        gc.freeze()
