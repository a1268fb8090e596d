"""The embedded generator on a real ~500-word passage: every answer key checked against it."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import pytest

from safexam.exams.kinds import decode_body, instantiate, validate_parametric
from safexam.qie.embedded import TEMPLATES, EmbeddedGenerator
from safexam.qie.quality import QualityFilter
from safexam.qie.schemas import Candidate, GenerationRequest
from safexam.qie.text import BLANK, analyze, normalize, split_sentences

PASSAGE = (Path(__file__).parent / "data" / "steam_engine.txt").read_text()
ALL_KINDS = ("mcq_single", "mcq_multi", "short_text", "numeric")
QUOTED = re.compile(r"“(.+)”")


def _generate(
    count: int = 50, seed: int = 0, kinds: tuple[str, ...] = ALL_KINDS
) -> list[Candidate]:
    request = GenerationRequest(source_text=PASSAGE, count=count, kinds=kinds, seed=seed)
    return EmbeddedGenerator().generate_sync(request).candidates


def _cloze(candidate: Candidate) -> str:
    match = QUOTED.search(candidate.prompt)
    assert match, candidate.prompt
    return match.group(1)


def _has_word(text: str, phrase: str) -> bool:
    return re.search(rf"\b{re.escape(phrase)}\b", text) is not None


def _fill(cloze: str, text: str) -> str:
    filled = cloze.replace(BLANK, text)
    return filled[0].upper() + filled[1:]


def test_passage_is_about_500_words() -> None:
    assert 450 <= len(PASSAGE.split()) <= 550


def test_every_answer_key_is_correct_against_the_passage() -> None:
    sentences = {normalize(s) for s in split_sentences(PASSAGE)}
    flat_passage = " ".join(PASSAGE.split())
    candidates = _generate(count=1000)
    kinds = Counter(c.kind for c in candidates)
    assert set(kinds) == set(ALL_KINDS), kinds
    for c in candidates:
        decode_body(c.kind, c.body)
        if c.meta.get("template"):
            continue  # checked in test_parametric_templates_compute_the_right_answer
        assert c.passage is not None and c.passage in flat_passage
        if c.kind == "short_text":
            answer, *fuller = c.body["answers"]
            assert _fill(_cloze(c), answer) == c.passage
            # Other accepted answers are fuller forms of the same name in the passage.
            assert all(answer in name and name in flat_passage for name in fuller)
        elif c.kind == "numeric":
            shown = c.meta["term"]
            assert float(shown.replace(",", "")) == c.body["answer"]
            assert _fill(_cloze(c), shown) == c.passage
        elif c.kind == "mcq_single":
            cloze = _cloze(c)
            texts = {ch["id"]: ch["text"] for ch in c.body["choices"]}
            (key,) = c.body["answer"]
            assert _fill(cloze, texts[key]) == c.passage
            for choice_id, text in texts.items():
                if choice_id != key:
                    # A distractor never restores any sentence of the passage
                    # and never appears in the sentence the question quotes.
                    assert normalize(_fill(cloze, text)) not in sentences
                    assert not _has_word(normalize(c.passage), normalize(text))
        elif c.kind == "mcq_multi":
            stem = _cloze(c).removesuffix(" …")
            assert c.passage.startswith(stem)
            rest = normalize(c.passage[len(stem) :])
            keys = set(c.body["answer"])
            for choice in c.body["choices"]:
                present = _has_word(rest, normalize(choice["text"]))
                assert present == (choice["id"] in keys), (c.passage, choice)


def test_blank_term_really_is_a_key_term() -> None:
    candidates = _generate(count=1000, kinds=("short_text",))
    answers = {c.body["answers"][0] for c in candidates}
    # People, places, defined terms and content words of the passage.
    assert {"James Watt", "Matthew Boulton", "condenser", "locomotive", "piston"} <= answers
    assert not answers & {"the", "was", "and", "which"}
    newcomen = next(c for c in candidates if c.body["answers"][0] == "Newcomen")
    assert newcomen.body["answers"] == ["Newcomen", "Thomas Newcomen"]


def test_deterministic_per_seed_and_varies_across_seeds() -> None:
    first = [(c.kind, c.prompt, c.body) for c in _generate(seed=7)]
    again = [(c.kind, c.prompt, c.body) for c in _generate(seed=7)]
    other = [(c.kind, c.prompt, c.body) for c in _generate(seed=8)]
    assert first == again
    assert first != other


def test_difficulty_sets_the_number_of_choices() -> None:
    for difficulty, n in (("easy", 3), ("medium", 4), ("hard", 5)):
        request = GenerationRequest(
            source_text=PASSAGE, count=20, kinds=("mcq_single",), difficulty=difficulty
        )
        batch = EmbeddedGenerator().generate_sync(request)
        sizes = Counter(len(c.body["choices"]) for c in batch.candidates)
        assert sizes.most_common(1)[0][0] == n, sizes


def test_parametric_templates_compute_the_right_answer() -> None:
    expected = {
        "average_speed": lambda v: v["d"] / v["t"],
        "percent_less": lambda v: v["c"] * (100 - v["p"]) / 100,
        "tonnes_to_kilograms": lambda v: v["m"] * 1000,
        "celsius_to_fahrenheit": lambda v: v["c"] * 1.8 + 32,
        "work_rate": lambda v: v["w"] / v["t"],
    }
    assert {t.name for t in TEMPLATES if t.kind == "numeric"} == set(expected)
    topic_only = EmbeddedGenerator().generate_sync(
        GenerationRequest(topic="physics", count=10, kinds=("numeric",))
    )
    assert {c.meta["template"] for c in topic_only.candidates} == set(expected)
    for c in topic_only.candidates:
        validate_parametric("numeric", c.prompt, c.body)
        prompts = set()
        for seed in range(20):
            prompt, body, values = instantiate("numeric", c.prompt, c.body, seed)
            prompts.add(prompt)
            assert body["answer"] == pytest.approx(expected[c.meta["template"]](values))
            decode_body("numeric", body)
        assert len(prompts) > 5  # students really get different numbers
    # From the passage, only templates whose units it mentions are offered.
    from_text = {c.meta.get("template") for c in _generate(count=1000, kinds=("numeric",))}
    assert {"average_speed", "percent_less", "tonnes_to_kilograms"} <= from_text
    assert "celsius_to_fahrenheit" not in from_text


def test_parametric_mcq_template_has_one_right_choice_per_variant() -> None:
    batch = EmbeddedGenerator().generate_sync(
        GenerationRequest(topic="percentages", count=5, kinds=("mcq_single",), seed=3)
    )
    (candidate,) = batch.candidates
    assert candidate.meta["template"] == "percent_of"
    validate_parametric("mcq_single", candidate.prompt, candidate.body)
    (key,) = candidate.body["answer"]
    answers = set()
    for seed in range(40):
        prompt, body, values = instantiate("mcq_single", candidate.prompt, candidate.body, seed)
        decode_body("mcq_single", body)
        texts = {c["id"]: c["text"] for c in body["choices"]}
        assert len(texts) == 4 and len(set(texts.values())) == 4
        assert float(texts[key]) == pytest.approx(values["p"] * values["n"] / 100)
        assert prompt == f"What is {values['p']} percent of {values['n']}?"
        answers.add(texts[key])
    assert len(answers) > 20
    # The right choice is not always the first one.
    keys = {
        EmbeddedGenerator()
        .generate_sync(GenerationRequest(topic="p", count=1, kinds=("mcq_single",), seed=s))
        .candidates[0]
        .body["answer"][0]
        for s in range(12)
    }
    assert len(keys) > 1


def test_text_analysis_basics() -> None:
    text = (
        "Dr. Ada Lovelace wrote notes in 1843. The Analytical Engine was designed by "
        "Charles Babbage in London. A compiler is a program that translates code.\n\nShort heading"
    )
    analysis = analyze(text)
    assert analysis.sentences[0] == "Dr. Ada Lovelace wrote notes in 1843."
    assert len(analysis.sentences) == 3
    kinds = {(t.kind, t.text) for t in analysis.terms}
    assert ("year", "1843") in kinds
    assert ("name", "Charles Babbage") in kinds
    assert ("place", "London") in kinds
    assert ("defined", "compiler") in kinds


def test_no_text_material_is_reported() -> None:
    batch = EmbeddedGenerator().generate_sync(
        GenerationRequest(source_text="Too short.", count=5, kinds=("mcq_single", "mcq_multi"))
    )
    assert batch.candidates == []
    assert batch.dropped == {"no_mcq_single_material": 1, "no_mcq_multi_material": 1}


def test_yield_and_speed_on_the_passage() -> None:
    """Figures for the report: valid questions from ~500 words, and the time it takes."""
    started = time.perf_counter()
    request = GenerationRequest(source_text=PASSAGE, count=50, kinds=ALL_KINDS)
    batch = EmbeddedGenerator().generate_sync(request)
    quality = QualityFilter()
    accepted = [c for c in batch.candidates if quality.admit(c)][:50]
    elapsed = time.perf_counter() - started
    assert len(accepted) >= 30
    assert elapsed < 5


def test_messy_input_html_bullets_and_run_on_text() -> None:
    html = "<p>The <b>Eiffel Tower</b> is a tower in Paris.</p><p>It was built in 1889.</p>"
    assert split_sentences(html) == [
        "The Eiffel Tower is a tower in Paris.",
        "It was built in 1889.",
    ]
    bullets = "Facts:\n- Mercury is the closest planet to the Sun.\n- Venus is the hottest planet."
    assert split_sentences(bullets) == [
        "Mercury is the closest planet to the Sun.",
        "Venus is the hottest planet.",
    ]
    run_on = " ".join(["word"] * 500) + "."
    assert split_sentences(run_on) == []
    numbers = " ".join(str(n) for n in range(3000)) + "."
    batch = EmbeddedGenerator().generate_sync(
        GenerationRequest(source_text=numbers, count=10, kinds=ALL_KINDS)
    )
    assert batch.candidates == []  # no sentence, and no unit to pick a template by
