import pytest

from lhama.eval.admire import load_subtask_a
from lhama.eval.rankers import PROMPTS, MiniLMRanker, ModelRanker, RandomRanker, order_by
from lhama.model.embeddings import SentenceEncoder
from tests.eval.helpers import write_admire


@pytest.fixture
def items(tmp_path):
    return load_subtask_a(write_admire(tmp_path))


def test_order_by_is_descending_and_stable(items):
    ranking = order_by(items[0], [0.1, 0.9, 0.5, 0.9, -1.0])
    assert ranking.order == tuple(items[0].images[i] for i in (1, 3, 2, 0, 4))


def test_random_ranker_is_seeded_per_item(items):
    first = [RandomRanker(seed=1).rank(i).order for i in items]
    assert [RandomRanker(seed=1).rank(i).order for i in reversed(items)] == list(reversed(first))
    assert [RandomRanker(seed=2).rank(i).order for i in items] != first
    assert all(sorted(o) == sorted(i.images) for o, i in zip(first, items))


def test_random_baseline_top1_is_about_one_fifth(items):
    hits = [RandomRanker(seed=s).rank(items[0]).order[0] == items[0].expected[0] for s in range(2000)]
    assert sum(hits) / len(hits) == pytest.approx(0.2, abs=0.03)


def test_minilm_puts_the_matching_caption_first(items):
    item = items[1]  # "The fisherman pulled a big fish out of the lake."
    captions = ("A red car on a road.", "A fisherman holding a large fish by a lake.", "A city skyline.",
                "A bowl of soup.", "A man in an office.")
    item = type(item)(**{**item.__dict__, "captions": captions})
    ranking = MiniLMRanker(SentenceEncoder()).rank(item)
    assert ranking.order[0] == item.images[1]
    assert max(ranking.scores) == ranking.scores[1]


@pytest.mark.parametrize("text_only", [False, True])
def test_model_ranker_returns_a_permutation(tiny_vlm, items, text_only):
    ranking = ModelRanker(tiny_vlm, "pt", text_only=text_only).rank(items[0])
    assert sorted(ranking.order) == sorted(items[0].images)
    assert len(set(ranking.scores)) > 1  # the judgement depends on the candidate


def test_model_ranker_image_track_uses_the_images(tiny_vlm, items):
    text = ModelRanker(tiny_vlm, "en", text_only=True).rank(items[0]).scores
    image = ModelRanker(tiny_vlm, "en", text_only=False).rank(items[0]).scores
    assert text != image


def test_a_cascade_model_ranks_images_by_its_labeler_notes(items, tmp_path):
    from lhama.model.build import load_model
    from tests.weights.test_cascade import tiny_cascade

    cascade = load_model(tiny_cascade(tmp_path / "model"))
    ranker = ModelRanker(cascade, "en", text_only=False)
    ranking = ranker.rank(items[0])
    assert sorted(ranking.order) == sorted(items[0].images)
    note = "[Imagem anexada: galo.]"
    question = ranker._question(items[0], items[0].captions[0], PROMPTS["en"], note)
    assert note in question and "<image>" not in question
