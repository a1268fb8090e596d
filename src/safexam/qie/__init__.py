"""Question generation (QIE): educators ask for questions, a ``qie`` worker makes drafts.

Map of the package:

- ``controller``: ``POST /api/v1/qie/jobs`` -> 202 ``{job_id}`` (educators).
- ``service``: ``request_generation`` (validate, enqueue) and
  ``run_generation`` (generate, validate, filter, insert drafts); the worker
  is ``workers/qie.py``.
- ``generators``: the ``Generator`` protocol; ``embedded`` (rules over the
  source text, no network) and ``llm`` (OpenAI-compatible chat completions).
- ``text``: sentence splitting and key-term extraction for ``embedded``.
- ``quality``: the filter every candidate passes (valid body, answer among
  distinct choices, no give-away stem, no near-duplicates).

Per-student parametric variants and their safe expression evaluator belong
to the question kinds (``safexam.exams.variants``, ``safexam.exams.expressions``,
``safexam.exams.kinds``): generated questions are validated like hand-written ones.
"""
