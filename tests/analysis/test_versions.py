"""Revised versions: same sender or organisation, never a shared public mail domain."""

from __future__ import annotations

from intake.analysis.text import fingerprint
from intake.analysis.versions import (
    _REPLACES,
    VersionDoc,
    VersionLink,
    find_versions,
    organisation_of,
    says_it_replaces,
    version_diff,
)
from tests.analysis.test_campaigns import INDEPENDENT, OWN_END, TEMPLATE


def _doc(doc_id: int, email: str, text: str) -> VersionDoc:
    return VersionDoc(
        id=doc_id,
        sender=email.lower(),
        organisation=organisation_of(email),
        fp=fingerprint(text),
        replaces=says_it_replaces(text),
    )


def test_same_sender_repeating_an_earlier_response_supersedes_it() -> None:
    revised = TEMPLATE.replace("three years", "five years") + "\n\n" + OWN_END
    links = find_versions(
        [_doc(1, "ann@example.org", TEMPLATE), _doc(2, "Ann@example.org", revised)]
    )
    assert links == [VersionLink(1, 2, "repeats")]


def test_saying_it_replaces_is_enough_for_the_same_sender() -> None:
    later = "Please use this one instead of my earlier email. " + INDEPENDENT[1]
    links = find_versions(
        [_doc(1, "bob@gmail.com", INDEPENDENT[0]), _doc(2, "bob@gmail.com", later)]
    )
    assert links == [VersionLink(1, 2, "replaces")]


def test_versions_chain_and_each_is_superseded_once() -> None:
    docs = [_doc(i, "cat@example.org", TEMPLATE + f" Draft {i}.") for i in (1, 2, 3)]
    assert find_versions(docs) == [VersionLink(1, 2, "repeats"), VersionLink(2, 3, "repeats")]


def test_gmail_senders_are_not_one_organisation() -> None:
    docs = [_doc(1, "dan@gmail.com", TEMPLATE), _doc(2, "eve@gmail.com", TEMPLATE)]
    assert organisation_of("dan@gmail.com") is None
    assert find_versions(docs) == []


def test_same_organisation_repeating_is_a_version() -> None:
    docs = [_doc(1, "policy@council.gov.uk", TEMPLATE), _doc(2, "chief@council.gov.uk", TEMPLATE)]
    assert organisation_of("chief@Council.gov.uk") == "council.gov.uk"
    assert find_versions(docs) == [VersionLink(1, 2, "repeats")]


def test_same_organisation_different_text_is_not_a_version() -> None:
    docs = [
        _doc(1, "a@council.gov.uk", INDEPENDENT[0]),
        _doc(2, "b@council.gov.uk", INDEPENDENT[2]),
    ]
    assert find_versions(docs) == []


def test_a_colleague_saying_replaces_with_nothing_in_common_is_not_a_version() -> None:
    later = "Please use this one instead. " + INDEPENDENT[3]
    docs = [_doc(1, "a@council.gov.uk", INDEPENDENT[0]), _doc(2, "b@council.gov.uk", later)]
    assert find_versions(docs) == []


def test_replacement_phrases() -> None:
    assert says_it_replaces("Please use this version instead, I made a mistake")
    assert says_it_replaces("This replaces my earlier response of 3 July.")
    assert says_it_replaces("Please disregard my previous email.")
    assert says_it_replaces("Attached is our revised response.")
    assert not says_it_replaces("We think the bank should replace existing grant schemes.")


def test_diff_shows_what_changed() -> None:
    diff = version_diff("one\ntwo\n", "one\nthree\n", "KIL-00001", "KIL-00002")
    assert "-two" in diff and "+three" in diff and "KIL-00002" in diff


def test_quick_refusal_agrees_with_the_pattern() -> None:
    """Texts without any of the pattern's words are refused before it runs: the answer
    is the pattern's, for ASCII and other texts alike."""
    samples = [
        "Please use this version instead, I made a mistake",
        "PLEASE USE THIS ONE INSTEAD",
        "In place of our first response, read this.",
        "This \u017fupersedes my earlier response.",  # a long s, matched ignoring case
        "Plea\u017fe di\u017fregard my previous email.",
        "We think the bank should replace existing grant schemes.",
        "Ignore nothing; this is our only response.",
        "x" * 2990 + " this replaces my letter",
        "",
    ]
    for sample in samples:
        assert says_it_replaces(sample) == (_REPLACES.search(sample[:3000]) is not None)


def _colleagues(count: int, first_id: int) -> list[VersionDoc]:
    """``count`` responses from other people at the council, each its own text."""
    return [
        _doc(first_id + n, f"staff{n}@council.gov.uk", f"Colleague {n} writes " + "x" * n)
        for n in range(count)
    ]


def test_a_colleague_is_compared_with_the_newest_fifty_of_the_organisation_only() -> None:
    """A repeat of a response with 50 colleagues' responses after it is still found; with
    51 it is not. The same person is compared with all their earlier responses."""
    from intake.analysis.versions import ORGANISATION_WINDOW

    assert ORGANISATION_WINDOW == 50
    first = _doc(1, "policy@council.gov.uk", TEMPLATE)
    within = [first, *_colleagues(49, 2), _doc(99, "chief@council.gov.uk", TEMPLATE)]
    assert VersionLink(1, 99, "repeats") in find_versions(within)
    beyond = [first, *_colleagues(50, 2), _doc(99, "chief@council.gov.uk", TEMPLATE)]
    assert [link for link in find_versions(beyond) if link.later == 99] == []
    own = [first, *_colleagues(200, 2), _doc(999, "Policy@council.gov.uk", TEMPLATE)]
    assert VersionLink(1, 999, "repeats") in find_versions(own)
