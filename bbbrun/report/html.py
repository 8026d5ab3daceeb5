"""The HTML of a report: escaped text, tables, images embedded as base64, one page with its own style.

Nothing on the page refers to another file or to the network: images are
data: URIs and the style sheet is inline, so the file opens anywhere, offline,
and can be mailed or attached as it is.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1d2430;
       background: #f6f7f9; line-height: 1.45; }
header { background: #1d2f4f; color: #fff; padding: 18px 32px; }
header h1 { margin: 0; font-size: 1.5em; }
header p { margin: 4px 0 0; opacity: 0.85; font-size: 0.95em; }
main { padding: 8px 32px 32px; max-width: 1400px; }
section { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; margin: 18px 0; padding: 6px 20px 16px; }
h2 { font-size: 1.15em; border-bottom: 1px solid #e5e8ec; padding-bottom: 6px; }
table { border-collapse: collapse; font-size: 0.9em; margin: 8px 0; }
th, td { border: 1px solid #dde1e7; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #eef1f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best td { background: #e6f4ea; font-weight: 600; }
tr.failed td { color: #b3261e; }
.status-completed { color: #1b7f3b; font-weight: 600; }
.status-failed, .status-interrupted, .status-running { color: #b3261e; font-weight: 600; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 16px; }
figure { margin: 0; min-width: 0; }
figure img { display: block; width: auto; height: auto; max-width: 100%; max-height: 460px;
             border: 1px solid #e5e8ec; }
figcaption { font-size: 0.85em; color: #5a6270; }
pre { background: #f3f4f6; padding: 10px; overflow-x: auto; font-size: 0.85em; }
ul.warnings li { color: #8a5300; }
.scroll { overflow-x: auto; }
"""


@dataclass(frozen=True)
class Section:
    title: str
    body: str  # HTML


def escape(value: object) -> str:
    return html.escape(str(value), quote=True)


def is_number(text: str) -> bool:
    """A number, or a "mean ± spread" cell."""
    try:
        float(text.split(" ± ")[0])
    except ValueError:
        return False
    return True


def table(columns: Sequence[str], rows: Sequence[Sequence[object]], row_classes: Sequence[str] | None = None) -> str:
    """A table with a header row; numeric cells right-aligned; each row may carry a class (best, failed)."""
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        cells = "".join(f'<td class="num">{escape(v)}</td>' if is_number(str(v)) else f"<td>{escape(v)}</td>"
                        for v in row)
        body.append(f"<tr{cls}>{cells}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def image(path: Path, caption: str) -> str:
    """A PNG file embedded in the page as a data: URI, with its caption."""
    return png(path.read_bytes(), caption)


def png(content: bytes, caption: str) -> str:
    """PNG bytes embedded in the page as a data: URI, with its caption."""
    data = base64.b64encode(content).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{escape(caption)}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def figures(items: Sequence[tuple[Path | bytes, str]]) -> str:
    """PNGs (files that exist, or bytes drawn for the page) side by side where the page is wide enough."""
    shown = [png(item, caption) if isinstance(item, bytes) else image(item, caption)
             for item, caption in items if isinstance(item, bytes) or item.is_file()]
    return f'<div class="figures">{"".join(shown)}</div>' if shown else "<p>No figures were written.</p>"


def preformatted(text: str) -> str:
    return f"<pre>{escape(text)}</pre>"


def status(text: str) -> str:
    return f'<span class="status-{escape(text)}">{escape(text)}</span>'


def page(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    parts = "".join(f"<section><h2>{escape(s.title)}</h2>{s.body}</section>" for s in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
            f"<body><header><h1>{escape(title)}</h1><p>{subtitle}</p></header><main>{parts}</main></body></html>\n")
