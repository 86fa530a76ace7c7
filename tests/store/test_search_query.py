"""The query parser and its two compilers: pure, no database."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.search_query import MAX_TERMS, Query, Term, parse, to_fts5, to_tsquery


def words(*items: str) -> Term:
    return Term(tuple(items))


class TestParse:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("home care", Query(((words("home"),), (words("care"),)))),
            ('"home care"', Query(((words("home", "care"),),))),
            ("home OR care", Query(((words("home"), words("care")),))),
            ("a b OR c", Query(((words("a"),), (words("b"), words("c"))))),
            ("parking -charges", Query(((words("parking"),),), (words("charges"),))),
            ('x -"bus routes"', Query(((words("x"),),), (words("bus", "routes"),))),
            ("procure*", Query(((Term(("procure",), prefix=True),),))),
            ("ab*", Query(((words("ab"),),))),
            ("re-procurement", Query(((words("re", "procurement"),),))),
            ("Siân", Query(((words("siân"),),))),
            ("Sia\u0302n", Query(((words("siân"),),))),  # decomposed: composed first
            ("home AND care", Query(((words("home"),), (words("care"),)))),
            ("NEAR(home care)", Query(((words("near", "home"),), (words("care"),)))),
            ("body:home", Query(((words("body", "home"),),))),
            ('"unclosed phrase', Query(((words("unclosed", "phrase"),),))),
            ("home\x00care", Query(((words("home"),), (words("care"),)))),
        ],
    )
    def test_examples(self, text: str, expected: Query) -> None:
        """The documented forms parse as documented; syntax characters become word breaks."""
        assert parse(text) == expected

    @pytest.mark.parametrize(
        "text", ["", " ", "-", "*", "-*", '""', "OR", "AND", "OR OR", "()", ":", "!!", "😀"]
    )
    def test_nothing_searchable(self, text: str) -> None:
        """Queries with nothing searchable are empty (they find nothing)."""
        assert parse(text).empty

    def test_only_exclusions_is_empty(self) -> None:
        """A query of only exclusions has no positive term: it finds nothing."""
        query = parse("-home -care")
        assert query.empty and len(query.excluded) == 2

    def test_dangling_or_is_ignored(self) -> None:
        """OR at either end, or after an exclusion, joins nothing."""
        assert parse("OR home OR") == parse("home")
        assert parse("a -b OR c") == Query(((words("a"),), (words("c"),)), (words("b"),))

    def test_long_input_is_cut(self) -> None:
        """Huge input is cut to a bounded number of terms."""
        query = parse("word " * 100_000)
        assert len(query.groups) == MAX_TERMS


class TestCompile:
    def test_fts5(self) -> None:
        """Every word is a quoted string; exclusions follow NOT."""
        query = parse('home "care home" OR support* -parking')
        assert to_fts5(query) == ('(("home") AND ("care home" OR "support"*)) NOT ("parking")')

    def test_tsquery(self) -> None:
        """Only function calls over bound parameters; the words travel as values."""
        expression, params = to_tsquery(parse('home "care home" -park*'), "intake_english")
        assert expression == (
            "((phraseto_tsquery('intake_english', :q0)) && "
            "(phraseto_tsquery('intake_english', :q1))) && "
            "!!(to_tsquery('intake_english', :q2))"
        )
        assert params == {"q0": "home", "q1": "care home", "q2": "'park':*"}

    @given(st.text())
    def test_fts5_strings_hold_only_letters_and_digits(self, text: str) -> None:
        """Whatever is typed, nothing but words reaches the inside of an FTS5 string."""
        for inner in re.findall(r'"([^"]*)"', to_fts5(parse(text))):
            assert all(word.isalnum() for word in inner.split())

    @given(st.text())
    def test_tsquery_parameters_hold_only_letters_and_digits(self, text: str) -> None:
        """Whatever is typed, the SQL text has no user characters and the values are words."""
        expression, params = to_tsquery(parse(text), "intake_english")
        assert re.fullmatch(r"[a-z_():'!&|, 0-9]*", expression.replace(":q", " q")) is not None
        for value in params.values():
            assert all(w.isalnum() for w in value.removesuffix(":*").strip("'").split())
