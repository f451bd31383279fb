"""``lhama bench decode``: decode speed of lhama's engine against plain transformers."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console

from lhama.cli.common import DEFAULT_MODEL, model_directory, named_draft, named_model
from lhama.cli.options import command

if TYPE_CHECKING:
    from lhama.inference.bench import BenchResult, DecodeBench

app = typer.Typer(help="Measure lhama on this machine.", no_args_is_help=True)


@dataclass(frozen=True)
class DecodeOptions:
    model: Annotated[str, typer.Option("--model", "-m", callback=named_model, help="A prepared model name or a local model directory.")] = DEFAULT_MODEL
    tokens: Annotated[int, typer.Option(help="New tokens to decode (greedy, end-of-turn ignored).")] = 128
    quant: Annotated[str, typer.Option(help="Weights of lhama's language model: none (fp32), bf16, int8 or int4 (quantised once, cached beside the model), or an int4 plan such as int4-g32+head+v+down-half.")] = "int4"
    draft: Annotated[Optional[str], typer.Option(callback=named_draft, help="A draft for speculative decoding (left out or `none`: plain decoding, unlike chat, where the lookup is the default for greedy answers): `lookup` (a prompt lookup, no model: x1.10 plain decoding on a 2-core Zen 3, docs/distill.md), or a draft model with the same tokenizer, e.g. qwen2.5-coder-0.5b-instruct (slower than plain decoding on a CPU without AVX-512: x0.95 there).")] = None
    draft_quant: Annotated[Optional[str], typer.Option(help="Weights of the --draft model, chosen apart from --quant: none, bf16, int8, int4 or an int4 plan (quantised once, cached beside it). Default: int4-g32 when --quant is int8 or int4 (the cheapest draft per step), else --quant's (none or bf16).")] = None
    baseline: Annotated[bool, typer.Option("--baseline/--no-baseline", help="Also time plain transformers fp32 generate (slow on big models).")] = True
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False

    def __post_init__(self) -> None:
        if self.tokens < 2:
            raise ValueError(f"--tokens must be >= 2, got {self.tokens}")
        from lhama.inference.quant import check_quant
        from lhama.inference.speculative import check_draft_options

        check_quant(self.quant)
        check_draft_options(self.draft, self.draft_quant)

    def request(self) -> DecodeBench:
        """The options as the library's DecodeBench (models as given: located by the command)."""
        from lhama.inference.bench import DecodeBench

        return DecodeBench(self.model, self.tokens, self.quant, self.draft, self.baseline, self.draft_quant)


@app.command("decode")
@command(DecodeOptions)
def decode(options: DecodeOptions) -> None:
    """Decode tokens/s, time to first token (text; one image when the model has a vision
    tower) and peak memory of lhama's engine, and transformers fp32 generate on the same model
    and prompt, in one process.

    Example:

      lhama bench decode --model qwen2.5-coder-1.5b-instruct --quant int4 --draft qwen2.5-coder-0.5b-instruct
    """
    from lhama.inference.bench import bench_models

    err = Console(stderr=True)
    with err.status(f"benchmarking {options.model} ({options.quant}) ..."):
        result = bench_models(options.request(), partial(model_directory, err=err))
    if options.as_json:
        print(result.to_json())
    else:
        _print_table(result)


def _print_table(result: BenchResult) -> None:
    rows = [
        ("model", f"{result.model} ({result.quant}, {result.threads} threads)"),
        ("lhama decode", f"{result.lhama_tok_s:.1f} tok/s"),
        ("transformers fp32", "-" if result.transformers_tok_s is None else f"{result.transformers_tok_s:.1f} tok/s"),
        ("time to first token", f"{result.ttft_s:.3f} s"),
        ("  with one image", "- (no vision tower)" if result.ttft_image_s is None else f"{result.ttft_image_s:.3f} s"),
        ("peak RSS", f"{result.peak_rss_mb:.0f} MB" + (" (includes this run's one-time quantisation)" if result.cache_built else "")),
        ("draft acceptance", "-" if result.acceptance_rate is None else f"{result.acceptance_rate:.0%}"),
        ("GGUF", result.gguf or "-"),
    ]
    for name, value in rows:
        print(f"{name:<22}{value}")
