"""Knowledge-distillation losses on a teacher's cached top-k logits (Hinton et al. 2015, with the
sparse top-k targets Llama 3.2's distillation used).

The teacher's distribution at a position is the softmax of its k largest logits divided by the
temperature T (the rest of the vocabulary gets no mass); the student's log-probabilities are its
full-vocabulary log-softmax at T, read at those k tokens. The loss is the forward KL
``sum_k p_k (log p_k - log q_k)`` times T^2 (Hinton's scaling, so gradients keep their size as T
changes). It is 0 only when the student puts exactly the teacher's top-k mass on those tokens,
so mass the student spends outside the teacher's top k is penalised too. ``losses`` applies it
(with the label cross-entropy) to a model's batch, ``evaluate`` scores held-out items.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from lhama.data.collate import Batch, Collator, Encoded
from lhama.data.conversation import IGNORE_INDEX

if TYPE_CHECKING:
    from lhama.train.logit_cache import TeacherTargets


def topk_kl(student_logits: torch.Tensor, teacher_values: torch.Tensor, teacher_indices: torch.Tensor,
            temperature: float) -> torch.Tensor:
    """Summed forward KL over positions (a float32 scalar).

    Args:
        student_logits: (N, V) the student's logits at N positions.
        teacher_values: (N, k) the teacher's k largest logits there; teacher_indices: (N, k) their token ids.
        temperature: T > 0; 1 leaves the distributions as they are.
    """
    teacher = F.log_softmax(teacher_values.float() / temperature, dim=-1)  # (N, k)
    student = F.log_softmax(student_logits.float() / temperature, dim=-1).gather(-1, teacher_indices.long())  # (N, k)
    return (teacher.exp() * (teacher - student)).sum() * temperature**2


def mixed_loss(kd_sum: torch.Tensor, ce_sum: torch.Tensor, kd_weight: float) -> torch.Tensor:
    """``kd_weight`` x distillation + (1 - ``kd_weight``) x label cross-entropy (both summed)."""
    return kd_weight * kd_sum + (1.0 - kd_weight) * ce_sum


def losses(model: torch.nn.Module, batch: Batch, values: torch.Tensor | None, indices: torch.Tensor | None,
           temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed top-k KL to the teacher, summed label cross-entropy) over the supervised positions.
    With no teacher rows (``values`` None) the KL is 0."""
    targets = batch.labels[:, 1:]  # (B, T-1)
    positions = (targets != IGNORE_INDEX).any(dim=0).nonzero().squeeze(1)  # (K,)
    logits = model(batch.input_ids, media=batch.media or None, attention_mask=batch.attention_mask,
                   logits_to_keep=positions).logits  # (B, K, V)
    kept = targets[:, positions]
    mask = kept != IGNORE_INDEX
    student = logits[mask]  # (N, V): row-major, the cache's order
    ce = F.cross_entropy(student.float(), kept[mask], reduction="sum")
    if values is None:
        return torch.zeros((), device=ce.device), ce
    return topk_kl(student, values.to(student.device), indices.to(student.device), temperature), ce


def evaluate(model: torch.nn.Module, collator: Collator, items: Sequence[Encoded], targets: TeacherTargets | None = None,
             temperature: float = 1.0) -> dict[str, float]:
    """Held-out label loss (``eval_loss``, nats per supervised token; its exp is the perplexity)
    and, with the teacher's rows for ``items`` (in order), the top-k KL (``eval_kl``)."""
    model.eval()
    device = next(model.parameters()).device
    kl_sum, ce_sum, tokens = 0.0, 0.0, 0
    with torch.no_grad():
        for start in range(0, len(items), 4):
            idx = list(range(start, min(start + 4, len(items))))
            batch = collator([items[i] for i in idx]).to(device)
            values, indices = targets.rows(idx) if targets else (None, None)
            kl, ce = losses(model, batch, values, indices, temperature)
            kl_sum, ce_sum, tokens = kl_sum + float(kl), ce_sum + float(ce), tokens + batch.target_tokens
    return {"eval_loss": ce_sum / max(tokens, 1), "eval_kl": kl_sum / max(tokens, 1), "eval_tokens": tokens}
