"""Rankers for AdMIRe: order an item's candidate images, best first.

- :class:`RandomRanker`: a fixed-seed shuffle per item (expected top-1 = 1/5 on Subtask A).
- :class:`MiniLMRanker`: text-only baseline, cosine similarity of each image caption to the
  sentence (Subtask A) or to the sequence captions (Subtask B), with all-MiniLM-L6-v2.
- :class:`ModelRanker`: a lhama model judges each candidate with a yes/no question; the
  score is log P(yes) - log P(no). On the image track the model sees the image itself (through
  its vision branch); on the text-only track it reads the image's caption instead.

Every ranker returns a :class:`Ranking` for one item, so the runner can cache item by item.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

from lhama.eval.admire import AdmireItem, SentenceItem, SequenceItem
from lhama.eval.answer import shown_image
from lhama.eval.idiom import classify_senses
from lhama.eval.scoring import ScoreRequest, score_continuations
from lhama.model.build import LoadedModel
from lhama.model.embeddings import SentenceEncoder

Item = AdmireItem | SequenceItem


@dataclass(frozen=True)
class Ranking:
    order: tuple[str, ...]  # image names, best first
    scores: tuple[float, ...]  # one per image, in the item's file order (higher = better)
    sentence_type: str | None = None  # Subtask B: the predicted sense, if the ranker predicts one


@dataclass(frozen=True)
class JudgePrompt:
    """The yes/no question a model answers per candidate, in one language (templates are data)."""

    context_a: str  # {sentence} {compound}
    context_b: str  # {sequence} {compound}
    image_line: str  # shown where the image is (its placeholder comes first)
    caption_line: str  # {caption}
    question: str  # {compound}
    yes: str
    no: str


PROMPTS = {
    "en": JudgePrompt(
        context_a='Sentence: "{sentence}"',
        context_b='A sequence of images about "{compound}":\n{sequence}',
        image_line="Look at the image above.",
        caption_line="Image description: {caption}",
        question='Does this image show the meaning of "{compound}" as used here? Answer yes or no.',
        yes="Yes", no="No",
    ),
    "pt": JudgePrompt(
        context_a='Frase: "{sentence}"',
        context_b='Uma sequência de imagens sobre "{compound}":\n{sequence}',
        image_line="Observe a imagem acima.",
        caption_line="Descrição da imagem: {caption}",
        question='Esta imagem mostra o sentido de "{compound}" como usado aqui? Responda sim ou não.',
        yes="Sim", no="Não",
    ),
}


class Ranker(Protocol):
    name: str

    def rank(self, item: Item) -> Ranking: ...


def order_by(item: Item, scores: list[float]) -> Ranking:
    """Images sorted by descending score; ties keep file order (a stable sort)."""
    order = sorted(range(len(item.images)), key=lambda i: -scores[i])
    return Ranking(tuple(item.images[i] for i in order), tuple(scores))


def context_text(item: Item) -> str:
    """What the candidates are judged against: the sentence, or the sequence captions."""
    if isinstance(item, AdmireItem):
        return item.sentence
    return "\n".join(f"{k}. {caption}" for k, caption in enumerate(item.sequence, start=1))


@dataclass
class RandomRanker:
    seed: int = 0
    name: str = "random"

    def rank(self, item: Item) -> Ranking:
        rng = random.Random(f"{self.seed}:{item.item_id}")  # per item: the same whatever the order
        scores = [rng.random() for _ in item.images]
        ranking = order_by(item, scores)
        sense = rng.choice(("idiomatic", "literal")) if isinstance(item, SequenceItem) else None
        return Ranking(ranking.order, ranking.scores, sense)


@dataclass
class MiniLMRanker:
    encoder: SentenceEncoder
    name: str = "minilm"

    def rank(self, item: Item) -> Ranking:
        return order_by(item, self.encoder.similarity(context_text(item), list(item.captions)))


@dataclass
class ModelRanker:
    """Rank by the model's yes/no judgement of each candidate (see :data:`PROMPTS`)."""

    loaded: LoadedModel
    lang: str = "en"
    text_only: bool = False
    caption_words: int = 60  # long machine captions are cut: the gist is in their first lines
    name: str = "model"

    def rank(self, item: Item) -> Ranking:
        prompt = PROMPTS[self.lang]
        requests = []
        for name, caption in zip(item.images, item.captions):
            # the image's placeholder and pixels, or a cascade model's labeler note in its place
            shown, media = ("", {}) if self.text_only else shown_image(self.loaded, item.image_path(name))
            messages = ({"role": "user", "content": self._question(item, caption, prompt, shown)},)
            requests += [ScoreRequest(messages, prompt.yes, media), ScoreRequest(messages, prompt.no, media)]
        scores = score_continuations(self.loaded, requests, batch_size=len(requests))  # one pass per item
        margins = [scores[2 * i].logprob - scores[2 * i + 1].logprob for i in range(len(item.images))]
        ranking = order_by(item, margins)
        sense = self._sense(item) if isinstance(item, SequenceItem) else None
        return Ranking(ranking.order, ranking.scores, sense)

    def _question(self, item: Item, caption: str, prompt: JudgePrompt, shown: str = "") -> str:
        """The judging question; ``shown``: what stands for the image (:func:`shown_image`), unless text-only."""
        if isinstance(item, AdmireItem):
            context = prompt.context_a.format(sentence=item.sentence, compound=item.compound)
        else:
            context = prompt.context_b.format(sequence=self._cut(context_text(item)), compound=item.compound)
        if self.text_only:
            seen = prompt.caption_line.format(caption=self._cut(caption))
        else:
            seen = f"{shown}\n{prompt.image_line}"
        return f"{context}\n{seen}\n{prompt.question.format(compound=item.compound)}"

    def _cut(self, text: str) -> str:
        words = text.split()
        return " ".join(words[: self.caption_words]) + (" ..." if len(words) > self.caption_words else "")

    def _sense(self, item: SequenceItem) -> str:
        sequence = self._cut(context_text(item)).replace("\n", " ")
        return classify_senses(self.loaded, [SentenceItem(item.compound, sequence, "literal")], self.lang)[0]
