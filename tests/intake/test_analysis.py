"""Passages, the question scorer and respondent types: pure functions, plain tests."""

from __future__ import annotations

import tomllib

import pytest

from intake.analysis import respondent
from intake.analysis.passages import MAX_WORDS, split_passages, split_response
from intake.analysis.respondent import classify_respondent
from intake.analysis.scorer import QuestionSpec, Scorer, tokens
from tests.conftest import ROOT


def _specs() -> list[QuestionSpec]:
    config = tomllib.loads((ROOT / "config.example.toml").read_text(encoding="utf-8"))
    return [
        QuestionSpec(q["key"], q["title"], q["text"], tuple(q["keywords"]), tuple(q["examples"]), n)
        for n, q in enumerate(config["questions"], start=1)
    ]


class TestPassages:
    def test_heading_travels_with_its_section(self) -> None:
        """A heading is not a passage; each passage under it records it."""
        text = "Question 2: scale fail\n\nThe contract failed.\n\nThe firm collapsed."
        found = split_passages(text, "reply.pdf")
        assert [p.text for p in found] == ["The contract failed.", "The firm collapsed."]
        assert {p.heading for p in found} == {"Question 2: scale fail"}
        assert [(p.where, p.order) for p in found] == [("reply.pdf", 0), ("reply.pdf", 1)]

    def test_list_items_and_table_rows_stay_whole(self) -> None:
        """A wrapped list item is one passage; a tab-separated row is one passage."""
        text = (
            "Our points follow.\n- first point that\n  wraps onto a second line\n- second point"
            "\n\nArea\tHomes\nNorth\t120"
        )
        found = split_passages(text)
        assert [(p.kind, p.text) for p in found] == [
            ("paragraph", "Our points follow."),
            ("list_item", "- first point that wraps onto a second line"),
            ("list_item", "- second point"),
            ("table_row", "Area | Homes"),
            ("table_row", "North | 120"),
        ]

    def test_long_paragraph_cut_at_sentence_ends(self) -> None:
        """A 400-word paragraph becomes pieces of at most MAX_WORDS, each ending a sentence."""
        sentence = "This sentence has exactly ten words in it, you see. "
        found = split_passages(sentence * 40)
        assert len(found) == 3
        assert all(len(p.text.split()) <= MAX_WORDS for p in found)
        assert all(p.text.endswith("see.") for p in found)
        assert " ".join(p.text for p in found) == (sentence * 40).strip()

    def test_quoted_reply_left_out_and_sources_in_order(self) -> None:
        """Lines quoted from an earlier mail are not the respondent's; attachments follow the body."""
        found = split_response(
            "Our answer is attached.\n\n> On Monday you wrote:\n> please reply",
            [("a.docx", "Trends are clear."), ("broken.pdf", None), ("b.pdf", "  ")],
        )
        assert [(p.where, p.text) for p in found] == [
            ("body", "Our answer is attached."),
            ("a.docx", "Trends are clear."),
        ]


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    return Scorer(_specs(), threshold=0.4, second_ratio=0.8)


class TestScorer:
    @pytest.mark.parametrize(
        ("text", "key"),
        [
            (
                "Budgets have been cut year after year while demand for social care keeps rising.",
                "a",
            ),
            (
                "The outsourcing contract with the national provider collapsed and was terminated.",
                "b",
            ),
            (
                "Our volunteers and the local charity transformed lives; the evaluation showed it.",
                "c",
            ),
            (
                "The council now gives grants to a partnership of local groups instead of tendering.",
                "d",
            ),
            ("Methodd y contract mawr gyda'r cwmni preifat.", "b"),
        ],
    )
    def test_best_question(self, scorer: Scorer, text: str, key: str) -> None:
        """Plain answers to each question are tagged with it, and the reason names keywords."""
        found = scorer.tag(text)
        assert found and found[0].key == key
        assert found[0].keywords and "keywords:" in found[0].reason

    def test_pleasantries_are_not_tagged(self, scorer: Scorer) -> None:
        """Greetings and sign-offs answer nothing."""
        assert scorer.tag("Dear Sir or Madam,") == []
        assert scorer.tag("Yours faithfully, Jan Hughes") == []

    def test_heading_names_the_question(self, scorer: Scorer) -> None:
        """Under "Question 4" a plain sentence is tagged d, and the reason says why."""
        text = "We wrote all of this together over several long years with help from nobody at all."
        assert scorer.tag(text) == []
        found = scorer.tag(text, heading="Question 4")
        assert [t.key for t in found] == ["d"]
        assert "heading names the question" in found[0].reason

    def test_tokens_stem_and_drop_stop_words(self) -> None:
        """'contracts' meets 'contract'; 'the' is not a term."""
        assert tokens("The contracts") == ["contract"]


class TestRespondent:
    @pytest.mark.parametrize(
        ("sender", "name", "text", "kind"),
        [
            (
                "policy@leeds.gov.uk",
                "Policy Team",
                "Leeds City Council response",
                "local_authority",
            ),
            ("polisi@cyngor.llyw.cymru", "", "Ymateb", "local_authority"),
            ("info@dwp.gov.uk", "", "Our response", "public_body"),
            ("a@trust.nhs.uk", "", "From the trust", "public_body"),
            ("h.marsh@lowland.ac.uk", "Dr Marsh", "My research", "academic"),
            (
                "jo@riverside.org.uk",
                "Jo",
                "Riverside Trust, registered charity number 1098765",
                "charity",
            ),
            ("hi@growers.co.uk", "Growers CIC", "We grow food.", "community_organisation"),
            ("m@bellfm.co.uk", "Mark", "Bell Facilities Management Ltd", "business"),
            ("pwalsh@gmail.com", "Peter Walsh", "I live in the town.", "individual"),
        ],
    )
    def test_types(self, sender: str, name: str, text: str, kind: str) -> None:
        """Domain, letterhead and signature decide the type; evidence is always given."""
        found = classify_respondent(sender, name, [text])
        assert found.type == kind
        assert found.evidence

    def test_public_mail_never_implies_an_organisation(self) -> None:
        """A gmail address alone is an individual with no organisation."""
        found = classify_respondent("someone@gmail.com", "Someone", ["Hello, I think so."])
        assert (found.type, found.organisation) == ("individual", "")
        assert "public mail provider" in found.evidence[0]

    def test_group_on_public_mail_is_still_a_group(self) -> None:
        """A residents' association writing from btinternet is a community organisation."""
        found = classify_respondent(
            "group@btinternet.com", "Sue", ["Our lunch club.\n\nSt Jude's Residents' Association"]
        )
        assert found.type == "community_organisation"
        assert found.organisation == "St Jude's Residents' Association"

    def test_needles_never_skip_a_match(self) -> None:
        """A pattern is skipped only for a text holding none of the words any match
        holds: the result is always what searching would give (odd letters included)."""
        samples = [
            "Riverside Trust, Registered  Charity No 1098765",
            "CHARITY NUMBER 12; elusen gofrestredig; Rhif Elusen; sc012345 and SC0123456",
            "regi\u017ftered charity, CHAR\u0130TY reg, \u017fc012345",  # long s, dotted I
            "We are a small local charity. Our charity helps.",
            "Written on behalf of the Lowland Growers Co-operative, which we run.",
            "responding for Anytown Borough Council; response from Friends of the Park",
            "Northmoor District Council, Cyngor Sir, Combined Authority, Local Authority",
            "University of Lowland, Prifysgol, Institute of X, School of Y, Research Centre",
            "NHS Health Board, Police, Fire and Rescue, Commissioner, Government, Ombudsman",
            "CIC C.I.C. Cooperative Residents Association Tenants' Association Community Group",
            "Acme Ltd Limited plc LLP Consulting Consultancy Solutions",
            "I am, I'm, I live here as a resident. Rwy'n byw. Dw i'n",
            "nothing to see here",
            "",
        ]
        for pattern in respondent._NEEDLES:
            for text in samples:
                for variant in (text, text.lower(), text.upper(), f"x {text}\n{text}"):
                    expected = pattern.search(variant)
                    found = respondent._search(pattern, variant)
                    assert (found and found.span()) == (expected and expected.span())
