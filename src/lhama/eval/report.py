"""One self-contained HTML report of an AdMIRe run: metrics table, then one row per item with
the sentence, the expected order and each system's predicted order as inline thumbnails.

Everything is inside the file (base64 JPEG thumbnails, CSS, a few lines of JS for the
idiomatic/literal filter), so it can be mailed or attached as a CI artifact.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from lhama.data.media import load_image
from lhama.errors import DataError
from lhama.eval.admire import AdmireItem
from lhama.eval.metrics import dcg, top1
from lhama.eval.rankers import context_text

THUMB_SIDE = 72  # px on screen; stored at twice that for sharp zoom

CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}
th{background:#f3f3f3}.num{text-align:right;font-variant-numeric:tabular-nums}
.order{display:flex;gap:4px}.cand{position:relative;width:%(s)dpx}.cand img{width:%(s)dpx;height:%(s)dpx;object-fit:cover}
.cand .cap{font-size:10px;width:%(s)dpx;height:%(s)dpx;overflow:hidden;background:#f7f7f7}
.rank{position:absolute;top:2px;left:2px;background:#000a;color:#fff;font-size:11px;padding:0 4px}
.gold1{outline:3px solid #2a2}.gold2{outline:3px solid #9c9}.ok{color:#2a2}.bad{color:#c22}
.filters button{margin-right:6px;padding:4px 10px}.filters button.on{background:#333;color:#fff}
.sentence{min-width:220px;max-width:320px;font-size:14px}""" % {"s": THUMB_SIDE}

JS = """function show(kind){document.querySelectorAll('tr.item').forEach(function(r){
r.style.display=(kind==='all'||r.dataset.type===kind)?'':'none'});
document.querySelectorAll('.filters button').forEach(function(b){b.classList.toggle('on',b.dataset.kind===kind)})}
if(['#idiomatic','#literal'].indexOf(location.hash)>=0){show(location.hash.slice(1))}"""  # report.html#literal opens filtered


def render_report(results, title: str = "AdMIRe evaluation") -> str:
    """The report's HTML text for an :class:`~lhama.eval.runner.AdmireResults`."""
    thumbs: dict[Path, str | None] = {}
    rows = "\n".join(_item_row(item, results.systems, thumbs) for item in results.items)
    cfg = results.config
    track = "none (baselines only)" if results.primary.kind != "model" else (
        "text-only (captions)" if cfg.text_only else "image")
    heads = "".join(f"<th>{html.escape(s.name)}</th>" for s in results.systems)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{CSS}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>Data: <code>{html.escape(str(cfg.data))}</code> &middot; subtask {cfg.subtask.upper()} &middot; language {cfg.lang}
&middot; model track: {track} &middot; {len(results.items)} items</p>
{_metrics_table(results)}
<h2>Items</h2>
<p class="filters"><button data-kind="all" class="on" onclick="show('all')">All</button><button data-kind="idiomatic"
onclick="show('idiomatic')">Idiomatic</button><button data-kind="literal" onclick="show('literal')">Literal</button></p>
<p>Green outline: the expected first (dark) and second (light) image. Numbers: predicted rank.</p>
<table id="items"><thead><tr><th>Item</th><th>Expected</th>{heads}</tr></thead>
<tbody>
{rows}
</tbody></table>
<script>{JS}</script></body></html>
"""


def write_report(results, path: str | Path, title: str = "AdMIRe evaluation") -> Path:
    """Write the report atomically; returns its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render_report(results, title), encoding="utf-8")
    tmp.replace(path)
    return path


def _metrics_table(results) -> str:
    groups = ("all", "idiomatic", "literal")
    keys = list(dict.fromkeys(k for s in results.systems for k in s.metrics if k != "n"))  # union, in order
    names = [k for k in keys if any(isinstance(s.metrics.get(k), dict) for s in results.systems)]
    extra = [k for k in keys if k not in names]  # single numbers, e.g. sentence_type_accuracy (B)
    head = "".join(f"<th>{html.escape(m)} ({g})</th>" for m in names for g in groups)
    head += "".join(f"<th>{html.escape(k)}</th>" for k in extra)
    body = ""
    for system in results.systems:
        cells = "".join(f'<td class="num">{_fmt(system.metrics.get(m, {}).get(g))}</td>' for m in names for g in groups)
        cells += "".join(f'<td class="num">{_fmt(system.metrics.get(k))}</td>' for k in extra)
        body += f'<tr class="system"><th>{html.escape(system.name)}</th>{cells}</tr>\n'
    counts = results.systems[0].metrics.get("n", {})
    note = ", ".join(f"{g}: {counts.get(g, 0)}" for g in groups)
    return f'<h2>Metrics</h2><table id="metrics"><thead><tr><th>System</th>{head}</tr></thead><tbody>\n{body}</tbody></table><p>Items: {note}</p>'


def _item_row(item, systems, thumbs: dict) -> str:
    expected = item.expected if isinstance(item, AdmireItem) else (item.expected,)
    cells = "".join(_prediction_cell(item, expected, s.rankings[item.item_id].order, thumbs) for s in systems)
    kind = item.sentence_type or "unknown"
    return (f'<tr class="item" data-type="{kind}" data-item="{html.escape(item.item_id)}">'
            f'<td class="sentence"><b>{html.escape(item.compound)}</b> <i>({kind})</i><br>'
            f'{html.escape(context_text(item))}</td>'
            f'<td>{_order(item, list(expected), expected, thumbs)}</td>{cells}</tr>')


def _prediction_cell(item, expected, order, thumbs: dict) -> str:
    if isinstance(item, AdmireItem):
        hit, gain = top1(expected, order), dcg(expected, order)
        summary = f'<span class="{"ok" if hit else "bad"}">top-1 {"✓" if hit else "✗"}</span> DCG {gain:.3f}'
    else:
        hit = order[0] == expected[0]
        summary = f'<span class="{"ok" if hit else "bad"}">{"✓" if hit else "✗"}</span>'
    return f"<td>{summary}{_order(item, order, expected, thumbs)}</td>"


def _order(item, order, expected, thumbs: dict) -> str:
    cands = []
    for rank, name in enumerate(order, start=1):
        gold = " gold1" if name == expected[0] else " gold2" if len(expected) > 1 and name == expected[1] else ""
        caption = item.captions[item.images.index(name)]
        uri = _thumbnail(item.image_path(name), thumbs)
        body = (f'<img src="{uri}" alt="{html.escape(name)}">' if uri
                else f'<div class="cap">{html.escape(caption[:200])}</div>')
        cands.append(f'<div class="cand{gold}" title="{html.escape(name)}: {html.escape(caption[:300])}">'
                     f'<span class="rank">{rank}</span>{body}</div>')
    return f'<div class="order">{"".join(cands)}</div>'


def _thumbnail(path: Path, thumbs: dict) -> str | None:
    """A base64 JPEG data URI, or None when the image file is absent (text-only data)."""
    if path not in thumbs:
        thumbs[path] = None
        if path.is_file():
            try:
                image = load_image(path)
            except DataError:
                return None
            image.thumbnail((THUMB_SIDE * 2, THUMB_SIDE * 2))
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=70)
            thumbs[path] = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return thumbs[path]


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))
