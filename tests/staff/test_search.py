"""Search end to end on both engines: real messages read by the pipeline, then searched."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from intake.app import App
from intake.cli import cli
from intake.staff.search import Snippet, count, rebuild, search
from intake.worker import import_path
from store import repo
from store.erasure import erase_submissions
from store.models import Submission
from store.search import clear_index, remove_from_index
from tests.conftest import make_settings, write_config

ON_TIME = dt.datetime(2018, 7, 20, 10, 0, tzinfo=dt.UTC)
LATE = dt.datetime(2018, 7, 30, 10, 0, tzinfo=dt.UTC)

# (sender name, address, subject, body, attachments, sent)
RESPONSES = [
    (
        "Siân Davies",
        "sian@example.cymru",
        "Ymateb: home care",
        "I am Siân, a carer in Gŵyr. The councils here fund home care for older people, and "
        "we quoted the £212,000 re-procurement of the contract.",
        [],
        ON_TIME,
    ),
    (
        "Éléonore Lefèvre",
        "eleonore@example.fr",
        "Café owners",
        "Les cafés of the high street need customers. François and I run a café.",
        [],
        ON_TIME,
    ),
    (
        "Library Friends",
        "friends@example.org",
        "Our response",
        "Please find our response attached.",
        [("evidence.txt", "Keep the library open in the evenings: the reading room matters.")],
        ON_TIME,
    ),
    (
        "Tom Hughes",
        "tom@example.net",
        "Views",
        "Our home town needs buses. Parking is hard. We care about the bus routes most of all.",
        [],
        ON_TIME,
    ),
    (
        "Late Writer",
        "late@example.net",
        "Parking",
        "Parking charges in the town centre should fall.",
        [],
        LATE,
    ),
    (
        "Procurement Office",
        "office@example.gov.uk",
        "Rules",
        "Procurement rules are complex for small firms.",
        [],
        ON_TIME,
    ),
]

HOSTILE = [
    "",
    " ",
    '"',
    '""',
    '"""',
    '"unclosed phrase',
    "-",
    "--",
    "*",
    "-*",
    "**",
    "a*",
    "OR",
    "OR OR",
    "home OR",
    "OR home",
    "AND",
    "home AND care",
    "NOT",
    "home NOT care",
    "NEAR(home care)",
    "NEAR/3",
    "home NEAR care",
    "(",
    ")",
    "((home)",
    "[care]",
    "{care}",
    "body:home",
    "subject:care",
    ":",
    "::",
    "^home",
    "home^2",
    "+care",
    "'care'",
    "care'; DROP TABLE submissions; --",
    "\x00",
    "home\x00care",
    "\x01home\x02",
    "%",
    "_",
    "\\",
    "care\\",
    "'",
    "!!care",
    "care & home",
    "care | home",
    "<->",
    "care:*",
    "care:A",
    "😀",
    "家庭护理",
    "a" * 5000,
    "home " * 400,
    "-home",
    "-home -care",
    '-"home care"',
    '"home care"*',
    "re-*",
    "£212,000",
    "212,000",
]


def _message(number: int, response: tuple) -> bytes:
    name, address, subject, body, files, sent = response
    message = EmailMessage()
    message["From"] = f"{name} <{address}>"
    message["To"] = "keepitlocal@example.org"
    message["Subject"] = subject
    message["Date"] = format_datetime(sent)
    message["Message-ID"] = f"<search-{number}@example.net>"
    message.set_content(body)
    for filename, text in files:
        message.add_attachment(text.encode(), maintype="text", subtype="plain", filename=filename)
    return bytes(message)


@pytest.fixture
def app(db_url: str, tmp_path: Path) -> Iterator[App]:
    """An App whose database holds the responses above, read by the real pipeline."""
    folder = tmp_path / "mail"  # a Maildir
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True)
    for number, response in enumerate(RESPONSES, start=1):
        (folder / "new" / f"{number:02d}.eml").write_bytes(_message(number, response))
    app = App(make_settings(db_url))
    with app.pipeline(acks=False) as pipeline:
        import_path(pipeline, folder)
        pipeline.read_pending()
    yield app
    app.close()


def _found(app: App, query: str, **kwargs: object) -> list[str]:
    with app.sessions() as session:
        return [hit.sender_email for hit in search(session, query, **kwargs)]


def _marked(snippet: Snippet) -> list[str]:
    """The matched words, lower case (FTS5 marks a phrase whole, PostgreSQL word by word)."""
    return [word.lower() for text, hit in snippet.segments if hit for word in text.split()]


def _reference(app: App, address: str) -> str:
    with app.sessions() as session:
        reference = session.scalar(
            select(Submission.reference).where(Submission.sender_email == address)
        )
    assert reference is not None
    return reference


class TestQueries:
    def test_words_and_stemming(self, app: App) -> None:
        """A word finds its other forms: council finds councils."""
        assert _found(app, "council") == ["sian@example.cymru"]
        assert _found(app, "councils fund") == ["sian@example.cymru"]

    def test_welsh_and_french_names_without_accents(self, app: App) -> None:
        """Sian finds Siân, Gwyr finds Gŵyr, Lefevre and Francois find the French response."""
        assert _found(app, "Sian") == ["sian@example.cymru"]
        assert _found(app, "Siân") == ["sian@example.cymru"]
        assert _found(app, "gwyr") == ["sian@example.cymru"]
        assert _found(app, "lefevre") == ["eleonore@example.fr"]
        assert _found(app, "Francois cafe") == ["eleonore@example.fr"]

    def test_exact_phrase(self, app: App) -> None:
        """A quoted phrase needs the words together, in order."""
        assert _found(app, '"home care"') == ["sian@example.cymru"]
        assert _found(app, '"care home"') == []

    def test_exact_phrase_ranks_first(self, app: App) -> None:
        """Of two responses with both words, the one with the phrase comes first."""
        assert _found(app, "home care") == ["sian@example.cymru", "tom@example.net"]

    def test_or(self, app: App) -> None:
        """OR finds either word."""
        assert set(_found(app, "library OR parking")) == {
            "friends@example.org",
            "tom@example.net",
            "late@example.net",
        }

    def test_exclusion(self, app: App) -> None:
        """A leading minus leaves out responses with that word."""
        assert _found(app, "parking -charges") == ["tom@example.net"]
        assert _found(app, 'parking -"bus routes"') == ["late@example.net"]

    def test_prefix(self, app: App) -> None:
        """A trailing star matches word beginnings, including after a hyphen."""
        assert set(_found(app, "procure*")) == {"sian@example.cymru", "office@example.gov.uk"}

    def test_header_fields(self, app: App) -> None:
        """Subject and sender address are searched too."""
        assert _found(app, "ymateb") == ["sian@example.cymru"]
        assert _found(app, "example.gov.uk") == ["office@example.gov.uk"]

    def test_where_names_the_attachment(self, app: App) -> None:
        """A hit in an attachment says which file, with the words marked."""
        with app.sessions() as session:
            hits = search(session, '"reading room"')
        assert [hit.where for hit in hits] == ["evidence.txt"]
        assert _marked(hits[0].snippet) == ["reading", "room"]
        assert "the [reading" in hits[0].snippet.terminal()
        assert "<mark>reading" in hits[0].snippet.html()

    def test_body_hit_and_filters(self, app: App) -> None:
        """Timeliness and date filters narrow the results; counts agree."""
        assert set(_found(app, "parking")) == {"tom@example.net", "late@example.net"}
        assert _found(app, "parking", timeliness="late") == ["late@example.net"]
        assert _found(app, "parking", timeliness="on_time") == ["tom@example.net"]
        assert _found(app, "parking", since=dt.datetime(2018, 7, 25, tzinfo=dt.UTC)) == [
            "late@example.net"
        ]
        with app.sessions() as session:
            assert count(session, "parking") == 2
            assert count(session, "parking", timeliness="late") == 1
            assert search(session, "parking")[0].where == "body"

    def test_paging(self, app: App) -> None:
        """Limit and offset page through the ranked list without overlap."""
        everyone = _found(app, "example", limit=50)
        assert len(everyone) == len(RESPONSES)
        assert (
            _found(app, "example", limit=2) + _found(app, "example", limit=50, offset=2) == everyone
        )

    def test_numbers_and_hyphens(self, app: App) -> None:
        """The £212,000 re-procurement is found by its figure and by its hyphenated word."""
        assert _found(app, '"212,000"') == ["sian@example.cymru"]
        assert _found(app, "re-procurement") == ["sian@example.cymru"]


class TestHostileInput:
    @pytest.mark.parametrize("query", HOSTILE, ids=range(len(HOSTILE)))
    def test_never_an_error(self, app: App, query: str) -> None:
        """Whatever is typed, the answer is a list (maybe empty), never an error."""
        with app.sessions() as session:
            hits = search(session, query)
            assert count(session, query) >= len(hits)
        assert all(hit.reference for hit in hits)

    def test_literal_keywords_find_nothing_extra(self, app: App) -> None:
        """NEAR and brackets are words, not operators: no response has 'near'."""
        assert _found(app, "NEAR(home care)") == []
        assert _found(app, "(home) [care]") == _found(app, "home care")

    def test_generated_queries(self, app: App) -> None:
        """Hypothesis: any text, including syntax characters, returns results or nothing."""
        alphabet = st.sampled_from(list("abc hocare\"-*()ORANDNEAR:^\\'\x00é ŵ"))
        queries = st.one_of(st.text(), st.text(alphabet=alphabet, max_size=40))

        @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
        @given(queries)
        def check(query: str) -> None:
            with app.sessions() as session:
                hits = search(session, query)
                assert count(session, query) >= len(hits)

        check()


class TestKeptCurrent:
    def test_purge_removes_from_the_index(self, app: App) -> None:
        """A purged response is no longer found."""
        with app.sessions() as session:
            ids = list(
                session.scalars(
                    select(Submission.id).where(Submission.sender_email == "late@example.net")
                )
            )
            erase_submissions(session, ids, anonymise=False)
            session.commit()
        assert _found(app, "parking") == ["tom@example.net"]
        with app.sessions() as session:
            assert count(session, "charges") == 0

    def test_reparse_reindexes(self, app: App, tmp_path: Path) -> None:
        """A response missing from the index is found again after `intake reparse`."""
        reference = _reference(app, "friends@example.org")
        with app.sessions() as session:
            sid = repo.get_by_reference(session, reference).id
            remove_from_index(session, [sid])
            session.commit()
        assert _found(app, "library") == []
        config = _config_file(app, tmp_path)
        result = CliRunner().invoke(cli, ["--config", str(config), "reparse", reference])
        assert result.exit_code == 0, result.output
        assert _found(app, "library") == ["friends@example.org"]
        assert _found(app, "library OR evenings") == ["friends@example.org"]

    def test_rebuild_gives_the_same_hits_as_the_stage(self, app: App) -> None:
        """After a rebuild every query finds the same hits, scores, places and snippets."""
        queries = ["example", "home care", '"reading room"', "library OR parking", "Sian", "rules"]
        queries += ["procure*", "parking -charges", "example.gov.uk", "ymateb", "£212,000"]

        def everything() -> tuple[list[object], list[tuple[object, ...]]]:
            with app.sessions() as session:
                hits = [search(session, query, limit=50) for query in queries]
                postgres = session.get_bind().dialect.name == "postgresql"
                columns = "id, part, subject, sender, body, document::text" if postgres else "*"
                key = "id" if postgres else "rowid"
                rows = session.execute(
                    sa.text(f"SELECT {key}, {columns} FROM search_index ORDER BY {key}")
                ).all()
            return hits, [tuple(row) for row in rows]

        hits, rows = everything()
        assert any(hits) and len(rows) == len(RESPONSES) + 1  # one attachment has text
        rebuild(app.sessions)
        assert everything() == (hits, rows)

    def test_rebuild(self, app: App) -> None:
        """A rebuild from the stored text gives the same answers as the stage did."""
        before = _found(app, "example", limit=50)
        progress: list[int] = []
        assert rebuild(app.sessions, progress.append) == len(RESPONSES)
        assert sum(progress) == len(RESPONSES)
        assert _found(app, "example", limit=50) == before


def _config_file(app: App, tmp_path: Path) -> Path:
    return write_config(tmp_path, url=app.settings.database.connect_url, maildir="/nonexistent")


class TestCommand:
    def test_terminal_output(self, app: App, tmp_path: Path) -> None:
        """Results show reference, UK time, sender, subject, where, and marked words."""
        config = _config_file(app, tmp_path)
        result = CliRunner().invoke(cli, ["--config", str(config), "search", "home care"])
        assert result.exit_code == 0, result.output
        reference = _reference(app, "sian@example.cymru")
        assert "2 response(s) match" in result.output
        assert reference in result.output and "BST" in result.output
        assert "Siân Davies <sian@example.cymru>" in result.output
        assert "In body:" in result.output and "[home" in result.output and "care]" in result.output

    def test_json_and_filters(self, app: App, tmp_path: Path) -> None:
        """--json prints one array; --late and --since filter it."""
        config = _config_file(app, tmp_path)
        result = CliRunner().invoke(
            cli, ["--config", str(config), "search", "parking", "--json", "--late"]
        )
        assert result.exit_code == 0, result.output
        records = json.loads(result.output)
        assert [r["reference"] for r in records] == [_reference(app, "late@example.net")]
        assert {"reference", "score", "where", "snippet"} <= set(records[0])
        assert "[Parking]" in records[0]["snippet"]
        since = CliRunner().invoke(
            cli, ["--config", str(config), "search", "parking", "--json", "--since", "2018-07-28"]
        )
        assert [r["reference"] for r in json.loads(since.output)] == [
            _reference(app, "late@example.net")
        ]

    def test_words_and_exclusions_as_arguments(self, app: App, tmp_path: Path) -> None:
        """Several arguments make one query; -word is an exclusion, not an option."""
        config = _config_file(app, tmp_path)
        for args in (["parking", "-charges"], ["--", "-charges", "parking"]):
            result = CliRunner().invoke(cli, ["--config", str(config), "search", "--json", *args])
            assert result.exit_code == 0, result.output
            assert [r["reference"] for r in json.loads(result.output)] == [
                _reference(app, "tom@example.net")
            ]

    def test_usage_errors(self, app: App, tmp_path: Path) -> None:
        """Conflicting options are one-line usage errors, not tracebacks."""
        config = _config_file(app, tmp_path)
        for args in (
            ["search"],
            ["search", "x", "--late", "--on-time"],
            ["search", "x", "--rebuild"],
        ):
            result = CliRunner().invoke(cli, ["--config", str(config), *args])
            assert result.exit_code == 2
            assert "Traceback" not in result.output

    def test_rebuild_command(self, app: App, tmp_path: Path) -> None:
        """--rebuild says how many responses it indexed."""
        config = _config_file(app, tmp_path)
        result = CliRunner().invoke(cli, ["--config", str(config), "search", "--rebuild"])
        assert result.exit_code == 0, result.output
        assert f"indexed {len(RESPONSES)} response(s)" in result.output


class TestEmptyIndex:
    def test_search_says_to_rebuild(self, app: App, tmp_path: Path) -> None:
        """With responses stored but none indexed (after an upgrade), search says what to do."""
        with app.sessions() as session:
            clear_index(session)
            session.commit()
        config = _config_file(app, tmp_path)
        result = CliRunner().invoke(cli, ["--config", str(config), "search", "home"])
        assert result.exit_code == 0, result.output
        assert "No response matches." in result.stdout
        assert "run `intake search --rebuild` once" in result.stderr
        rebuilt = CliRunner().invoke(cli, ["--config", str(config), "search", "--rebuild"])
        assert rebuilt.exit_code == 0, rebuilt.output
        assert _found(app, "home care") == ["sian@example.cymru", "tom@example.net"]


class TestSnippet:
    def test_html_escapes_all_but_the_marks(self) -> None:
        """Text is escaped; only the matched words are wrapped in <mark>."""
        snippet = Snippet.from_marked("a <b> & \x01care\x02 <script>")
        assert snippet.html() == "a &lt;b&gt; &amp; <mark>care</mark> &lt;script&gt;"
        assert snippet.terminal() == "a <b> & [care] <script>"
        assert snippet.plain() == "a <b> & care <script>"

    def test_terminal_text_has_no_control_characters(self) -> None:
        """A hostile message's terminal escapes are not printed."""
        snippet = Snippet.from_marked("red \x1b[31mtext\x1b[0m\r\n \x01bell\x07\x02 \x9b2J")
        assert snippet.terminal() == "red [31mtext [0m [bell ] 2J"
        assert "\x1b" not in snippet.plain() and "\x9b" not in snippet.plain()
