"""A pool of translation workers with a bounded cache of finished sentences.

Each worker thread owns one backend (see :mod:`.backend` for why). Sentences are deduplicated
and looked up in an LRU cache first: LLaVA data repeats its questions ("What is the main focus
of the image?") thousands of times. Batches are taken from a shared queue, so a worker that
gets short sentences simply takes more batches.
"""

from __future__ import annotations

import queue
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from lhama.data.translate.backend import Backend


class TranslatorPool:
    """Translate many sentences with ``workers`` backends in parallel, in input order."""

    def __init__(
        self, make_backend: Callable[[], Backend], workers: int, batch_size: int, cache_size: int = 50_000
    ) -> None:
        self._idle: queue.SimpleQueue[Backend] = queue.SimpleQueue()
        for _ in range(workers):
            self._idle.put(make_backend())
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="translate")
        self._batch_size = batch_size
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._cache_size = cache_size

    def translate(self, texts: list[str]) -> list[str]:
        """Translations of ``texts`` (duplicates and cached sentences translated once)."""
        unique = list(dict.fromkeys(texts))
        for text in unique:
            if text in self._cache:
                self._cache.move_to_end(text)  # recently used: evicted last
        todo = [t for t in unique if t not in self._cache]
        # Longest first: the tail of the queue is short work, so workers finish together.
        todo.sort(key=len, reverse=True)
        batches = [todo[i : i + self._batch_size] for i in range(0, len(todo), self._batch_size)]
        fresh: dict[str, str] = {}
        for batch, result in zip(batches, self._executor.map(self._run, batches)):
            fresh.update(zip(batch, result))
        out = [fresh[t] if t in fresh else self._cache[t] for t in texts]
        self._remember(fresh)
        return out

    def _run(self, batch: list[str]) -> list[str]:
        backend = self._idle.get()
        try:
            return backend.translate_batch(batch)
        finally:
            self._idle.put(backend)

    def _remember(self, fresh: dict[str, str]) -> None:
        for text, translation in fresh.items():
            self._cache[text] = translation
            self._cache.move_to_end(text)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
