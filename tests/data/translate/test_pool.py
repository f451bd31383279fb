import threading

from lhama.data.translate.pool import TranslatorPool


class Recorder:
    """A reversible toy engine that records what it was asked (the pool is what is tested)."""

    def __init__(self, calls: list[str], lock: threading.Lock) -> None:
        self.calls, self.lock = calls, lock

    def translate_batch(self, texts: list[str]) -> list[str]:
        with self.lock:
            self.calls.extend(texts)
        return [t[::-1] for t in texts]


def test_order_kept_duplicates_and_cached_sentences_translated_once() -> None:
    calls: list[str] = []
    lock = threading.Lock()
    pool = TranslatorPool(lambda: Recorder(calls, lock), workers=2, batch_size=2)
    try:
        assert pool.translate(["ab", "cd", "ab", "efg"]) == ["ba", "dc", "ba", "gfe"]
        assert pool.translate(["cd", "xy"]) == ["dc", "yx"]
    finally:
        pool.close()
    assert sorted(calls) == ["ab", "cd", "efg", "xy"]


def test_cache_can_be_off() -> None:
    calls: list[str] = []
    pool = TranslatorPool(lambda: Recorder(calls, threading.Lock()), workers=1, batch_size=4, cache_size=0)
    try:
        pool.translate(["ab"])
        pool.translate(["ab"])
    finally:
        pool.close()
    assert calls == ["ab", "ab"]
