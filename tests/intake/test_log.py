"""Log lines carry the mailbox, UID, reference and stage of the event they report."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from sqlalchemy import delete

from intake.app import App
from intake.log import FORMAT, ContextFilter, bound
from intake.worker import import_path
from store.models import RawMessage
from tests.conftest import make_settings
from tests.intake.test_poll import compose


def _capture() -> tuple[io.StringIO, logging.Handler]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(ContextFilter())
    handler.setFormatter(logging.Formatter(FORMAT))
    logging.getLogger("intake").addHandler(handler)
    return out, handler


def test_bound_and_extra_keys_are_printed() -> None:
    """Values bound for a block, and extra= values, appear as key=value after the message."""
    out, handler = _capture()
    try:
        with bound(mailbox="imap://u@h:143/INBOX"), bound(stage="read"):
            logging.getLogger("intake.test").warning("hello", extra={"uid": 7})
        logging.getLogger("intake.test").warning("after")
    finally:
        logging.getLogger("intake").removeHandler(handler)
    first, second = out.getvalue().splitlines()
    assert first.endswith("hello mailbox=imap://u@h:143/INBOX uid=7 stage=read")
    assert second.endswith("after")


def test_a_failing_stage_logs_its_stage_submission_and_reference(tmp_path: Path) -> None:
    """The runner's failure line names the stage, the submission and its reference."""
    app = App(make_settings(f"sqlite:///{tmp_path / 'i.db'}"))
    (tmp_path / "a.eml").write_bytes(compose(1))
    with app.pipeline(acks=False) as pipeline:
        import_path(pipeline, tmp_path / "a.eml")
        with app.sessions() as session:
            session.execute(delete(RawMessage))
            session.commit()
        out, handler = _capture()
        try:
            pipeline.read_pending()
        finally:
            logging.getLogger("intake").removeHandler(handler)
    app.close()
    (line,) = [line for line in out.getvalue().splitlines() if "stage failed" in line]
    assert line.endswith("stage failed reference=KIL-00001 submission=1 stage=read")
