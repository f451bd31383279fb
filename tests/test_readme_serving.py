"""The README's serving example says what it prints: the moderation line's comment gives the
shipped guard's verdict on its input, and the client asks for the model the server command serves."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
SERVING = README.split("## Serving", 1)[1].split("\n## ", 1)[0]


def test_the_moderation_example_prints_what_its_comment_says() -> None:
    from lhama.guard import load_guard

    text, said = re.search(r'moderations\.create\(input="([^"]+)"\).*# (True|False)', SERVING).groups()
    assert (not load_guard().check([{"role": "user", "content": text}], "user").safe) == (said == "True")


def test_the_client_asks_for_the_model_the_server_command_serves() -> None:
    command = re.search(r"^lhama serve .*$", SERVING, re.M).group(0)
    served = m.group(1) if (m := re.search(r"--model (\S+)", command.split("#")[0])) else "lhama-default"
    assert re.findall(r'completions\.create\(model="([^"]+)"', SERVING) == [served]
