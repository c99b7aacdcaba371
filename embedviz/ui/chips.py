"""Token chips as HTML: the one place the page builds markup from user-derived text, all of it escaped."""
from __future__ import annotations

import html
from collections.abc import Sequence

from embedviz.explorer import Token


def chips_html(sentence: Sequence[Token], cut: int, *, meta: bool = True) -> str:
    """A row of chips, one per token (text, id, row); `cut` tokens past P as one dashed chip."""
    parts = []
    for t in sentence:
        cls = "ev-chip ev-unk" if t.unk else "ev-chip"
        # typed ids have no tokenizer id: they are rows, and the chip says only that
        info = (f"row {t.row:,}" if t.token_id is None
                else f"id {t.token_id:,} · row {t.row:,}{' · &lt;unk&gt;' if t.unk else ''}")
        parts.append(
            f'<span class="{cls}"><span class="ev-tok">{html.escape(t.label)}</span>'
            + (f'<span class="ev-meta">{info}</span>' if meta else "") + "</span>"
        )
    if cut:
        parts.append(f'<span class="ev-chip ev-cut">+{cut} cut</span>')
    return '<div class="ev-chips">' + "".join(parts) + "</div>"
