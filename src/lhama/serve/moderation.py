"""``/v1/moderations``: OpenAI's moderation shape answered by lhama's guard (S1-S14).

``flagged`` is exactly the guard's verdict (so the endpoint scores what ``lhama guard`` scores);
``categories`` maps the guard's S-codes onto OpenAI's names (table below; S-codes with no OpenAI
equivalent get lhama names), and ``guard_categories`` lists the codes themselves. Text-and-image
input is judged as a chat turn is: the text, plus the served model's own caption of the images
(a cascade model's class names), plus any text OCR reads in them.
"""

from __future__ import annotations

import uuid

import numpy as np

from lhama.guard import Guard, Verdict
from lhama.guard.classifier import ClassifierGuard
from lhama.guard.translate import TranslatingGuard
from lhama.guard.verdict import CODES
from lhama.serve.engine import Engine
from lhama.serve.errors import RequestError
from lhama.serve.prompt import Target, build_prompt
from lhama.serve.schemas import ChatCompletionRequest, ImagePart, ModerationRequest, ModerationResponse, ModerationResult

# Category name -> the guard codes that count for it. OpenAI's 13 names first, then lhama's own
# for the Llama Guard 3 categories OpenAI has no name for.
CATEGORY_CODES: dict[str, tuple[str, ...]] = {
    "harassment": ("S5",),
    "harassment/threatening": (),
    "hate": ("S10",),
    "hate/threatening": (),
    "illicit": ("S2", "S3"),
    "illicit/violent": ("S1", "S9"),
    "self-harm": ("S11",),
    "self-harm/intent": (),
    "self-harm/instructions": (),
    "sexual": ("S3", "S4", "S12"),
    "sexual/minors": ("S4",),
    "violence": ("S1", "S9"),
    "violence/graphic": (),
    "specialized-advice": ("S6",),
    "privacy": ("S7",),
    "intellectual-property": ("S8",),
    "elections": ("S13",),
    "code-interpreter-abuse": ("S14",),
}
MODEL = "lhama-guard"


def moderate(request: ModerationRequest, engine: Engine, target: Target) -> ModerationResponse:
    """One result per string of ``input``, or one for a list of text and image parts.

    Raises:
        RequestError: the server runs without a guard, or an image part is unusable (param
        ``input[i]...``).
    """
    guard = engine.guard
    if guard is None:
        raise RequestError("this server runs without the safety guard (--no-guard), so it cannot moderate",
                           None, "moderation_unavailable")
    items = request.input
    if isinstance(items, str) or all(isinstance(item, str) for item in items):
        texts = [items] if isinstance(items, str) else list(items)
        if not texts:
            raise RequestError("give at least one text to moderate", "input", "invalid_value")
        results = [_result(v, s, "text") for v, s in zip(guard.check_batch(texts, "user"), _scores(guard, texts))]
    else:
        results = [_parts_result(items, engine, target)]
    return ModerationResponse(id=f"modr-{uuid.uuid4().hex}", model=MODEL, results=results)


def _parts_result(parts: list, engine: Engine, target: Target) -> ModerationResult:
    """The parts as one chat turn, judged as a chat request is (lhama.serve.prompt): images
    through the model's own caption, a cascade model's class names and any OCR text as notes."""
    content = [part.model_dump() for part in parts]
    request = ChatCompletionRequest(model=target.model_id, messages=[{"role": "user", "content": content}], max_tokens=1)
    try:
        prompt = build_prompt(request, target)
    except RequestError as exc:  # name the moderation field, not the chat one
        param = (exc.param or "").replace("messages[0].content", "input", 1) or None
        raise RequestError(str(exc).removeprefix(f"{exc.param}: "), param, exc.code) from None
    verdict = engine.judge(prompt)
    kind = "image" if any(isinstance(part, ImagePart) for part in parts) else "text"
    return _result(verdict, _scores(engine.guard, [prompt.messages[-1]["content"]])[0], kind)


def _scores(guard: Guard, texts: list[str]) -> list[dict[str, float] | None]:
    """Per-code probabilities where the guard gives them (the default classifier), else None."""
    if isinstance(guard, TranslatingGuard):  # the default: scores of the text as written
        guard = guard.guard
    if not isinstance(guard, ClassifierGuard):
        return [None] * len(texts)
    probs = guard.probabilities(texts)  # (N, 15): column 0 is "unsafe", then S1..S14
    return [{code: float(p) for code, p in zip(CODES, row[1:])} for row in np.asarray(probs)]


def _result(verdict: Verdict, scores: dict[str, float] | None, kind: str) -> ModerationResult:
    """The OpenAI result of one verdict; without scores, a flagged category scores the verdict's
    score (or 1.0) and the rest 0.0."""
    flagged_codes = set(verdict.categories)
    if scores is None:
        scores = {code: (verdict.score or 1.0) if code in flagged_codes else 0.0 for code in CODES}
    categories = {name: bool(flagged_codes & set(codes)) for name, codes in CATEGORY_CODES.items()}
    category_scores = {name: max((scores[c] for c in codes), default=0.0) for name, codes in CATEGORY_CODES.items()}
    applied = {name: [kind] if codes else [] for name, codes in CATEGORY_CODES.items()}
    return ModerationResult(flagged=not verdict.safe, categories=categories, category_scores=category_scores,
                            category_applied_input_types=applied, guard_categories=sorted(flagged_codes, key=CODES.index))
