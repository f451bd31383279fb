"""``lhama train`` as one call: a recipe (a YAML file or a shipped preset) and its dotted
overrides, loaded into a :class:`~lhama.train.config.TrainConfig` and run.

:class:`TrainRun` is plain data (building it loads no torch); :func:`train` finds the recipe,
loads it with the overrides (type-checked, unknown keys refused) and runs the stage it names
(:func:`lhama.train.recipes.run`), under torchrun too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the recipes import torch; the run itself is data
    from lhama.train.recipes import RunResult


@dataclass(frozen=True)
class TrainRun:
    recipe: str = "stage1-tuxpaint"  # a recipe YAML file, or the name of a preset in lhama/presets/
    overrides: tuple[str, ...] = ()  # dotted key=value overrides; ~key removes a key
    resume: bool = False  # continue from the newest checkpoint in output_dir


def train(run: TrainRun, echo: Callable[[str], None] = print) -> RunResult:
    """Load ``run.recipe`` with ``run.overrides`` and run it; see :mod:`lhama.train.recipes`.

    Raises:
        ConfigError: no such file or preset, an unknown key or a wrong type in the overrides, a
            required key left unset (all before any model loads), or ``resume`` without a checkpoint.
        DataError, CheckpointError: from the recipe (unusable data, a missing model).
    """
    from lhama.config import load
    from lhama.train.config import TrainConfig
    from lhama.train.recipes import find_recipe, run as run_recipe

    config = load(TrainConfig, find_recipe(run.recipe), list(run.overrides))
    return run_recipe(config, resume=run.resume, echo=echo)
