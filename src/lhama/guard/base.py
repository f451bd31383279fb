"""The :class:`Guard` interface every moderation backend implements, and the message shapes it
accepts (a plain string, or a chat as a list of ``{"role", "content"}`` dicts)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Literal, Union

from lhama.errors import DataError
from lhama.guard.verdict import Verdict, merge

Role = Literal["user", "assistant"]
Messages = Union[str, Sequence[Mapping[str, str]]]


class Guard(ABC):
    """Classifies the last message of a conversation as safe or unsafe (S1-S14).

    ``role="user"`` moderates the user's input; ``role="assistant"`` moderates the model's output
    in the context of the conversation before it.
    """

    @abstractmethod
    def check(self, messages: Messages, role: Role = "user") -> Verdict:
        """Verdict on the last message of ``messages`` (a string is one message of ``role``)."""

    def check_batch(self, texts: Sequence[str], role: Role = "user") -> list[Verdict]:
        """Verdicts for many independent one-message conversations (backends may batch)."""
        return [self.check(t, role) for t in texts]

    def check_with_caption(self, messages: Messages, caption: str) -> Verdict:
        """Verdict on a user turn that carries an image: its text and the model's own caption of
        the image are checked separately, and the turn is unsafe if either is."""
        return merge([self.check(messages, "user"), self.check(caption, "user")])


def as_chat(messages: Messages, role: Role) -> list[dict[str, str]]:
    """Normalise ``messages`` to a list of ``{"role", "content"}`` dicts ending with ``role``.

    Raises:
        DataError: empty conversation, a message without text, or a last message of another role.
    """
    if isinstance(messages, str):
        return [{"role": role, "content": messages}]
    chat = []
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or not isinstance(m.get("content"), str):
            raise DataError(f"message {i} must be a mapping with a 'content' string, got {m!r}")
        chat.append({"role": str(m.get("role", "user")), "content": m["content"]})
    if not chat:
        raise DataError("nothing to check: the conversation is empty")
    if chat[-1]["role"] != role:
        raise DataError(f"the last message has role {chat[-1]['role']!r}, expected {role!r}")
    return chat
