from __future__ import annotations

from typing import Any

from safexam.qie.quality import QualityFilter, similar, stem_core
from safexam.qie.schemas import Candidate


def _c(kind: str, prompt: str, body: dict[str, Any]) -> Candidate:
    return Candidate(kind=kind, prompt=prompt, body=body, generator="test")


def _mcq(prompt: str, texts: list[str], answer: list[str], kind: str = "mcq_single") -> Candidate:
    choices = [{"id": chr(ord("a") + i), "text": t} for i, t in enumerate(texts)]
    return _c(kind, prompt, {"choices": choices, "answer": answer})


GOOD = _mcq(
    "Which gas do plants take in for photosynthesis?", ["Oxygen", "Carbon dioxide", "Helium"], ["b"]
)


def test_good_candidate_passes() -> None:
    quality = QualityFilter()
    assert quality.admit(GOOD)
    assert quality.rejected == {}


def test_answer_must_be_among_the_choices() -> None:
    quality = QualityFilter()
    # kinds.py already refuses an unknown key: it is invalid like a hand-written one would be.
    assert quality.check(_mcq("Pick the prime number.", ["4", "6", "7"], ["z"])) == "invalid"
    assert quality.check(_mcq("Pick the prime number.", ["4", "6", "7"], [])) == "invalid"


def test_choices_must_be_distinct() -> None:
    quality = QualityFilter()
    same = _mcq("Which city is the capital of France?", ["Paris", "paris ", "Lyon"], ["a"])
    assert quality.check(same) == "invalid"  # the shared schema already refuses it
    punctuated = _mcq("Which city is the capital of France?", ["Paris", "Paris!", "Lyon"], ["a"])
    assert quality.check(punctuated) == "duplicate_choices"


def test_stem_must_not_give_the_answer_away() -> None:
    quality = QualityFilter()
    assert (
        quality.check(
            _mcq(
                "Was the Rocket built by George Stephenson?",
                ["George Stephenson", "James Watt", "Thomas Savery"],
                ["a"],
            )
        )
        == "answer_in_stem"
    )
    assert (
        quality.check(
            _c(
                "short_text",
                "Fill in: “The condenser is a _____ vessel.” (condenser)",
                {"answers": ["condenser"]},
            )
        )
        == "answer_in_stem"
    )
    assert (
        quality.check(
            _c(
                "numeric",
                "In 1769 Watt patented it. In which year did Watt patent it?",
                {"answer": 1769},
            )
        )
        == "answer_in_stem"
    )
    # A different word that merely contains the answer is fine.
    assert (
        quality.check(
            _c(
                "short_text",
                "Which machinery part moves? “The _____ moves.”",
                {"answers": ["machine"]},
            )
        )
        is None
    )


def test_near_duplicates_of_the_bank_and_the_batch() -> None:
    quality = QualityFilter.for_bank(["Which gas do plants take in for photosynthesis ?"])
    assert quality.check(GOOD) == "near_duplicate_bank"
    quality = QualityFilter()
    first = _c(
        "short_text",
        "Fill in the blank: “A _____ is a vessel in which steam is cooled back into water.”",
        {"answers": ["condenser"]},
    )
    reworded = _mcq(
        "Which option completes this sentence?"
        " “A _____ is a vessel in which steam is cooled back into water.”",
        ["condenser", "boiler", "piston"],
        ["a"],
    )
    unrelated = _c(
        "short_text",
        "Fill in the blank: “The _____ reached a speed of about 48 kilometres per hour.”",
        {"answers": ["Rocket"]},
    )
    assert quality.admit(first)
    assert not quality.admit(reworded)
    assert quality.admit(unrelated)
    assert quality.rejected == {"near_duplicate_batch": 1}


def test_similarity_measure() -> None:
    assert similar(stem_core("What is 2 + 2?"), stem_core("what is 2+2 ?"))
    assert not similar(stem_core("What is 2 + 2?"), stem_core("What is 7 + 5?"))
    assert similar(
        stem_core("Name the largest planet of the solar system."),
        stem_core("Name the largest planet in the solar system."),
    )
    assert not similar(
        stem_core("Name the largest planet of the solar system."),
        stem_core("Name the smallest ocean on Earth."),
    )
    assert stem_core("Fill in: “The _____ opened in 1830.”") == "the opened in 1830"


def test_invalid_bodies_and_parametric_bodies() -> None:
    quality = QualityFilter()
    assert quality.check(_c("numeric", "How far?", {"tolerance": 1})) == "invalid"
    assert quality.check(_c("essay", "Discuss.", {})) == "invalid"
    assert quality.check(_c("numeric", "", {"answer": 1})) == "invalid"
    bad_param = {"parameters": [{"name": "a", "min": 0, "max": 3}], "answer_expression": "1 / a"}
    assert quality.check(_c("numeric", "a is {{ a }}; what is 1/a?", bad_param)) == "invalid"
    good_param = {"parameters": [{"name": "a", "min": 1, "max": 3}], "answer_expression": "2 * a"}
    assert quality.check(_c("numeric", "a is {{ a }}; what is 2a?", good_param)) is None
