"""The registry of question kinds: every kind declares every part, and a new kind needs
nothing but its module (a toy kind registered here flows through grading unchanged)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, get_args

import msgspec
import pytest

from safexam.coding.compare import parse_comparison
from safexam.coding.languages import LANGUAGES
from safexam.core.errors import Unprocessable
from safexam.exams.kinds import (
    KINDS,
    Kind,
    QuestionKind,
    correct_answer,
    decode_answer,
    decode_body,
    instantiate,
    public_view,
    score_fraction,
    validate_parametric,
)
from safexam.exams.kinds.base import Strict
from safexam.grading.service import QuestionRow, score_items


@pytest.fixture(autouse=True)
def _clean_state() -> None:
    """These tests touch neither PostgreSQL nor Redis (overrides the database cleanup)."""


CHOICES = [{"id": c, "text": f"choice {c}"} for c in "abc"]
# A body and a right answer of every kind; a new kind adds its own here.
SAMPLES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "mcq_single": ({"choices": CHOICES, "answer": ["b"]}, {"choice": "b"}),
    "mcq_multi": ({"choices": CHOICES, "answer": ["a", "c"]}, {"choices": ["c", "a"]}),
    "numeric": ({"answer": 2.5, "tolerance": 0.1}, {"value": 2.55}),
    "short_text": ({"answers": ["Paris"]}, {"text": "  paris "}),
    "coding": (
        {
            "languages": ["python"],
            "tests": [{"name": "t", "stdin": "1\n", "expected_output": "2\n", "hidden": True}],
        },
        {"language": "python", "source": "print(2)"},
    ),
}
KEY_FIELDS = {"answer", "answers", "tests", "template", "expected_output"}


def test_every_question_kind_has_a_registered_module_with_every_part() -> None:
    assert set(get_args(QuestionKind)) == set(KINDS) == set(SAMPLES)
    for name, kind in KINDS.items():
        assert kind.name == name
        assert issubclass(kind.body_type, Strict) and issubclass(kind.answer_type, Strict)
        raw_body, raw_answer = SAMPLES[name]
        body: dict[str, Any] = msgspec.to_builtins(decode_body(name, raw_body))
        answer = decode_answer(name, body, raw_answer)
        assert isinstance(answer, kind.answer_type)
        view = public_view(name, body)
        assert not KEY_FIELDS & set(view), (name, view)
        assert correct_answer(name, body) is not None
        if kind.scored_from_answer:
            assert score_fraction(name, body, raw_answer) == 1.0
            assert score_fraction(name, body, None) == 0.0
        else:
            with pytest.raises(ValueError, match="not scored from the answer"):
                score_fraction(name, body, raw_answer)
        validate_parametric(name, "A plain prompt", body)
        assert instantiate(name, "A plain prompt", body, 1) == ("A plain prompt", body, {})


def test_hidden_tests_stay_out_of_the_view_and_the_key() -> None:
    body = msgspec.to_builtins(decode_body("coding", SAMPLES["coding"][0]))
    assert public_view("coding", body)["visible_tests"] == []
    assert correct_answer("coding", body) == {
        "tests": [{"name": "t", "points": 1.0, "hidden": True}]
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"languages": ["python", "ruby"]}, "body.languages[1]"),
        ({"template": {"python": "no placeholder"}}, "body.template"),
        ({"comparison": "float:-1"}, "body.comparison"),
        ({"comparison": "float:1e999"}, "body.comparison"),
    ],
)
def test_coding_bodies_are_checked_against_the_coding_domain(
    body: dict[str, Any], field: str
) -> None:
    with pytest.raises(Unprocessable) as info:
        decode_body("coding", {**SAMPLES["coding"][0], **body})
    assert info.value.details[0]["field"] == field


def test_the_languages_and_the_placeholder_are_the_judges_own() -> None:
    body = {**SAMPLES["coding"][0], "languages": list(LANGUAGES)}
    decode_body("coding", body)
    # The judge substitutes {{SOURCE}} as well as {{ SOURCE }}; so authoring accepts it.
    decode_body("coding", {**body, "template": {"python": "{{SOURCE}}\nprint(f())\n"}})


MODES = [
    "exact",
    "trimmed",
    "tokens",
    "float:0",
    "float:0.001",
    "float:.5",
    "float:1e-6",
    "float:2.",
]
BAD_MODES = ["", "fuzzy", "float:", "float:abc", "float:-1", "float:inf", "float: 1", "float:+1"]


@pytest.mark.parametrize("mode", [*MODES, *BAD_MODES])
def test_authoring_and_judging_read_one_comparison_grammar(mode: str) -> None:
    try:
        parse_comparison(mode)
        judged = True
    except ValueError:
        judged = False
    try:
        decode_body("coding", {**SAMPLES["coding"][0], "comparison": mode})
        authored = True
    except Unprocessable:
        authored = False
    assert judged == authored == (mode in MODES)


# ---------------------------------------------------------------- a kind added later


class YesNoBody(Strict):
    answer: bool


class YesNoAnswer(Strict):
    value: bool


class YesNo(Kind):
    name = "yes_no"
    body_type = YesNoBody
    answer_type = YesNoAnswer

    def public_view(
        self, body: Mapping[str, Any], choice_order: Sequence[str] | None
    ) -> dict[str, Any]:
        return {"choices": [{"id": "yes", "text": "Yes"}, {"id": "no", "text": "No"}]}

    def correct_answer(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        return {"value": body["answer"]}

    def score(self, body: Mapping[str, Any], answer: Mapping[str, Any]) -> float:
        return 1.0 if answer.get("value") is body["answer"] else 0.0


@pytest.fixture
def yes_no() -> Iterator[None]:
    KINDS["yes_no"] = YesNo()
    try:
        yield
    finally:
        del KINDS["yes_no"]


@pytest.mark.usefixtures("yes_no")
def test_a_new_kind_needs_only_its_module() -> None:
    body = msgspec.to_builtins(decode_body("yes_no", {"answer": True}))
    assert decode_answer("yes_no", body, {"value": False}) == YesNoAnswer(value=False)
    with pytest.raises(Unprocessable) as info:
        decode_answer("yes_no", body, {"value": "maybe"})
    assert info.value.details[0]["field"] == "answer.value"
    assert "answer" not in public_view("yes_no", body)
    assert correct_answer("yes_no", body) == {"value": True}
    with pytest.raises(Unprocessable):
        validate_parametric("yes_no", "x", {**body, "parameters": [{"name": "a", "values": [1]}]})

    right, wrong, unanswered = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    questions = {q: QuestionRow(q, "yes_no", "Is it?", body) for q in (right, wrong, unanswered)}
    paper = [{"question_id": str(q), "points": 2.0} for q in questions]
    answers = {right: {"value": True}, wrong: {"value": False}}
    scores = score_items(paper, questions, answers, {}, session_seed=1)
    assert [s.score for s in scores] == [2.0, 0.0, 0.0]
