"""Emoji artwork with human-written Portuguese names: many more labelled concepts for the default.

Tux Paint gives the default model 498 labelled training stamps, too few for a projector to map a
frozen ImageNet tower into the words of a language model (stage 2 memorises them). Emoji sets are
clip-art of the same kinds of things (animals, food, vehicles, clothes, people) and each one has a
short Portuguese name written by CLDR's translators, so no machine translation is involved.

Inputs are two npm packages, unpacked (``npm pack NAME@VERSION && tar xzf NAME-VERSION.tgz``):

* an ``emoji-datasource-<style>`` package (``emoji.json`` + ``img/<style>/64/*.png``), e.g.
  ``emoji-datasource-google`` (Noto Emoji, Apache-2.0) or ``emoji-datasource-twitter``
  (Twemoji, CC-BY-4.0);
* ``cldr-annotations-full`` (``annotations/pt/annotations.json``: the ``tts`` name of each emoji).

Faces, flags, keycaps and symbols are left out: they are not things a photo or a stamp shows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lhama.errors import DataError

Record = dict[str, Any]

KEPT_CATEGORIES = frozenset({"Activities", "Animals & Nature", "Food & Drink", "Objects", "People & Body",
                             "Travel & Places"})
# Emoji subcategories that clearly fall in one of Tux Paint's coarse categories (the mix's
# "De que tipo é esta figura?" turn); the others get no category turn rather than a guess.
TUX_CATEGORY_OF = {
    "animal-mammal": "Animais", "animal-bird": "Animais", "animal-marine": "Animais", "animal-bug": "Animais",
    "animal-reptile": "Animais", "animal-amphibian": "Animais", "plant-flower": "Plantas", "plant-other": "Plantas",
    "food-fruit": "Comida", "food-vegetable": "Comida", "food-prepared": "Comida", "food-asian": "Comida",
    "food-sweet": "Comida", "drink": "Comida", "clothing": "Roupas", "household": "Objetos da casa",
    "medical": "Medicina", "transport-ground": "Veículos", "transport-air": "Veículos", "transport-water": "Veículos",
    "place-building": "Cidade", "sport": "Esportes", "event": "Datas comemorativas",
    "person": "Pessoas", "person-role": "Pessoas",
}


def emoji_rows(package: Path, annotations: Path) -> tuple[list[Record], int]:
    """One row per kept-category emoji that has an image in ``package`` and a Portuguese name:
    ``{"id", "image", "name", "category"}`` (``category``: a Tux Paint category or ``None``), and
    how many kept-category emoji were left out for lacking either (reported, not lost silently)."""
    style, entries = _package_entries(package)
    names = portuguese_names(annotations)
    rows, unusable = [], 0
    for entry in (e for e in entries if e.get("category") in KEPT_CATEGORIES):
        char = _char(entry["unified"])
        name = names.get(char) or names.get(char.replace("\ufe0f", ""))  # CLDR keys often drop the variation selector
        image = package / "img" / style / "64" / entry["image"]
        if not (name and entry.get(f"has_img_{style}") and image.is_file()):
            unusable += 1
            continue
        rows.append({"id": f"emoji-{style}-{entry['unified'].lower()}", "image": str(image.resolve()),
                     "name": name, "category": TUX_CATEGORY_OF.get(entry.get("subcategory", ""))})
    if not rows:
        raise DataError(f"no named emoji images found in {package} (is it an emoji-datasource-<style> package?)")
    return rows, unusable


def portuguese_names(annotations: Path) -> dict[str, str]:
    """Emoji character -> its CLDR Portuguese name ('🦉' -> 'coruja')."""
    path = annotations / "annotations" / "pt" / "annotations.json"
    if not path.is_file():
        raise DataError(f"CLDR Portuguese annotations not found: {path} (unpack cldr-annotations-full)")
    table = json.loads(path.read_text(encoding="utf-8"))["annotations"]["annotations"]
    return {char: entry["tts"][0] for char, entry in table.items() if entry.get("tts")}


def emoji_answer(name: str) -> str:
    """'maçã vermelha' -> 'Maçã vermelha.' (CLDR names carry no article; adding one would mean
    guessing each noun's gender)."""
    return name[:1].upper() + name[1:] + "."


def _package_entries(package: Path) -> tuple[str, list[Record]]:
    manifest = package / "emoji.json"
    styles = [p.name for p in (package / "img").iterdir() if p.is_dir()] if (package / "img").is_dir() else []
    if not manifest.is_file() or len(styles) != 1:
        raise DataError(f"not an unpacked emoji-datasource-<style> package: {package}")
    return styles[0], json.loads(manifest.read_text(encoding="utf-8"))


def _char(unified: str) -> str:
    return "".join(chr(int(code, 16)) for code in unified.split("-"))
