"""The campaign detector on hand-written letters: each edit type, and what must stay apart."""

from __future__ import annotations

from intake.analysis.campaigns import (
    BandIndex,
    CampaignParams,
    Role,
    describe,
    find_groups,
    settle,
)
from intake.analysis.text import Fingerprint, fingerprint, minhash, signature

PARAS = [
    "I am writing to respond to the consultation on the Scottish National Investment Bank. "
    "I believe the bank must have a clear mission to tackle the climate emergency and to "
    "reduce inequality in every part of the country, not only in the central belt.",
    "Local authorities and community groups should be able to apply directly for patient "
    "capital, and the bank should publish every investment decision with the reasons for "
    "it, so that the public can hold it to account for the money it lends.",
    "The bank must never invest in fossil fuel extraction or in companies that pay less "
    "than the real living wage. Fair work conditions should be written into its founding "
    "legislation from the very start and reviewed by parliament every three years.",
    "Finally, the board should include representatives of trade unions, of the voluntary "
    "sector and of rural and island communities, who know what their places need far "
    "better than any consultant in Edinburgh or London ever could.",
]
TEMPLATE = "\n\n".join(PARAS)
OWN_START = (
    "As a nurse in Inverness for twenty years I have watched our health centre lose staff "
    "every winter because nobody can afford to rent a flat near the hospital."
)
OWN_END = (
    "My own village lost its only bus to Dingwall last spring and my neighbours now walk "
    "four miles to the surgery, which is why this matters so much to me."
)
INDEPENDENT = [
    "Local authorities need long term funding to keep public services running. In my view "
    "the investment bank should lend to councils for housing, because the current system "
    "leaves them relying on short grants that end before any building starts.",
    "Our members feel that public services in rural areas have been cut for a decade. The "
    "national investment bank could help local authorities build broadband and transport, "
    "but only if decisions are taken close to the communities affected by them.",
    "I do not support the bank at all. Public money should go straight to local authorities "
    "and public services rather than into a new institution with its own board, offices and "
    "salaries, which will take years to lend anything to anyone.",
    "We run a small business in Fife making wooden furniture and would welcome access to "
    "patient capital. Banks on the high street will not lend for longer than five years and "
    "we need to replace machinery that lasts for twenty.",
]

PARAMS = CampaignParams()


def _cluster(texts: list[str]) -> tuple[list[list[int]], dict[int, Fingerprint]]:
    fps = {i: fingerprint(t) for i, t in enumerate(texts)}
    return find_groups(fps.items(), PARAMS), fps


def _roles(texts: list[str]) -> dict[int, tuple[str, float, str | None]]:
    groups, fps = _cluster(texts)
    assert len(groups) == 1, groups
    view = describe(groups[0], fps.__getitem__, texts.__getitem__, PARAMS)
    assert view is not None
    return {i: (m.role, m.containment, m.additions) for i, m in view.members.items()}


def _edited(kind: str) -> str:
    paras = list(PARAS)
    if kind == "few_words":
        text = TEMPLATE.replace("climate emergency", "climate crisis").replace(
            "consultant", "adviser"
        )
        return text.replace("three years", "five years")
    if kind == "block_edited":
        paras[2] = (
            "The bank should invest in tidal energy, in insulating old tenements and in the "
            "ferries our islands depend on, and should be judged on the jobs it creates."
        )
    elif kind == "reordered":
        paras = [paras[2], paras[0], paras[3], paras[1]]
    elif kind == "embedded":
        paras = [OWN_START, "I agree with the letter below, which I copy here:", *paras, OWN_END]
    elif kind == "start":
        paras = [OWN_START, *paras]
    elif kind == "end":
        paras = [*paras, OWN_END]
    return "\n\n".join(paras)


def test_each_edit_type_joins_the_template_and_keeps_its_own_text() -> None:
    kinds = ["few_words", "block_edited", "reordered", "embedded", "start", "end"]
    texts = [TEMPLATE, TEMPLATE, TEMPLATE, *(_edited(k) for k in kinds), *INDEPENDENT]
    roles = _roles(texts)
    assert set(roles) == set(range(3 + len(kinds)))  # every copy, no independent response
    assert roles[0][0] == Role.TEMPLATE
    assert roles[1] == (Role.COPY, 1.0, None)
    by_kind = dict(zip(kinds, (roles[3 + n] for n in range(len(kinds))), strict=True))
    assert by_kind["few_words"][0] == Role.COPY
    assert 0.8 < by_kind["few_words"][1] < 1.0
    assert by_kind["reordered"][0] == Role.COPY
    assert by_kind["start"][0] == Role.COPY_WITH_ADDITIONS
    assert by_kind["start"][2] == OWN_START.rstrip(".")
    assert by_kind["end"][2] == OWN_END.rstrip(".")
    embedded = by_kind["embedded"][2] or ""
    assert OWN_START.rstrip(".") in embedded and OWN_END.rstrip(".") in embedded
    assert "patient capital" not in embedded
    assert by_kind["block_edited"][0] == Role.COPY_WITH_ADDITIONS
    assert "tidal energy" in (by_kind["block_edited"][2] or "")


def test_template_is_the_common_text_not_the_first_or_longest() -> None:
    texts = [_edited("embedded"), _edited("end"), TEMPLATE, TEMPLATE, _edited("start")]
    roles = _roles(texts)
    assert roles[2][0] == Role.TEMPLATE
    assert roles[0][0] == Role.COPY_WITH_ADDITIONS


def test_independent_responses_on_the_same_topic_stay_apart() -> None:
    groups, _ = _cluster([*INDEPENDENT, *INDEPENDENT[:1], TEMPLATE])
    assert groups == [[0, 4]]  # only the identical pair; the template joins nobody


def test_quoting_one_sentence_of_the_template_is_not_a_copy() -> None:
    quote = PARAS[1].split(". ")[0]
    letter = f'{INDEPENDENT[0]}\n\nI agree with those who say "{quote}."\n\n{INDEPENDENT[3]}'
    groups, _ = _cluster([TEMPLATE, TEMPLATE, letter])
    assert groups == [[0, 1]]


def test_a_letter_quoting_half_the_template_is_partial() -> None:
    half = "\n\n".join([PARAS[1], PARAS[3], OWN_END])
    roles = _roles([TEMPLATE, TEMPLATE, half])
    assert roles[2][0] == Role.PARTIAL
    assert 0.35 < roles[2][1] < 0.5
    assert roles[2][2] == OWN_END.rstrip(".")


def test_short_texts_never_make_a_campaign() -> None:
    groups, _ = _cluster(["I agree with the proposals.", "I agree with the proposals."])
    assert groups == []


def test_settle_keeps_campaign_ids_and_staff_pins() -> None:
    previous = {1: 10, 2: 10, 3: 10, 7: 20, 8: 20}
    pins: dict[int, int | None] = {3: None, 9: 20}
    settled = settle([[1, 2, 3, 4], [7, 8]], previous, pins)
    assert settled == [(10, {1, 2, 4}, set()), (20, {7, 8, 9}, {9})]
    fresh = settle([[5, 6]], previous, {})
    assert fresh == [(None, {5, 6}, set())]


def test_band_index_finds_what_datasketch_finds() -> None:
    """The index of bands answers as datasketch's MinHashLSH with the same bands."""
    texts = [TEMPLATE, OWN_START + "\n\n" + TEMPLATE, TEMPLATE + "\n\n" + OWN_END, *INDEPENDENT]
    texts += [" ".join(PARAS[i % 4].split()[j:]) for i in range(8) for j in (0, 5, 40)]
    texts += [f"{OWN_END} {INDEPENDENT[n % 4]}" for n in range(4)]
    mine, theirs = BandIndex(PARAMS.bands, PARAMS.rows), PARAMS.lsh()
    for n, body in enumerate(texts):
        fp = fingerprint(body)
        if not fp.size:
            continue
        found = mine.query(signature(fp))
        assert found == sorted(theirs.query(minhash(fp)))
        mine.insert(n, signature(fp))
        theirs.insert(n, minhash(fp))
    assert any(len(mine.query(signature(fingerprint(t)))) > 1 for t in texts)
