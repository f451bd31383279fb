"""Knowledge-distillation losses on a teacher's cached top-k logits (Hinton et al. 2015, with the
sparse top-k targets Llama 3.2's distillation used).

The teacher's distribution at a position is the softmax of its k largest logits divided by the
temperature T (the rest of the vocabulary gets no mass); the student's log-probabilities are its
full-vocabulary log-softmax at T, read at those k tokens. The loss is the forward KL
``sum_k p_k (log p_k - log q_k)`` times T^2 (Hinton's scaling, so gradients keep their size as T
changes). It is 0 only when the student puts exactly the teacher's top-k mass on those tokens,
so mass the student spends outside the teacher's top k is penalised too.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
