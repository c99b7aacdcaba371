"""The page's prose and CSS, in one place so wording can be checked and changed without touching layout."""
from __future__ import annotations

TITLE = "How a GPT turns text into vectors"
SUBTITLE = "tiktoken splits text into tokens; `nn.Embedding` tables turn them into vectors."

EXPLAIN_TOK = (
    "**Token embeddings** `wte(ids)`: each token id picks one row of the table. The same token "
    "gets the same vector wherever it stands: a *static* meaning, before any context. These are "
    "random numbers now; training moves them so that tokens used alike end up alike."
)
EXPLAIN_POS = (
    "**Positional embeddings** `wpe(arange(T))`: attention itself ignores order, so the model adds "
    "a vector per position. GPT-2 *learns* these P rows like any other weights (the original "
    "Transformer used fixed sine waves). They do not depend on the tokens."
)
EXPLAIN_SUM = (
    "**Their sum** `x = wte(ids) + wpe(pos)` is what the first Transformer block receives. "
    "Only later layers mix information between positions and give each token a *contextual* meaning."
)
EXPLAIN_TRAINING = (
    "A tiny GPT learns to predict the next token of the corpus. Its `wte` and `wpe` start as the "
    "exact tables above; watch what training does to them."
)
EXPLAIN_POSITIONS = (
    "GPT-2 **learns** its positional table: it starts as random noise (every position unlike every "
    "other) and training shapes it so that nearby positions get similar vectors — a band along the "
    "diagonal. The original Transformer used **sinusoidal** positions instead: fixed sine and cosine "
    "waves of many wavelengths, the same for every model, similar for nearby positions by construction "
    "and defined for any length. The learned table can only cover the P positions it was trained on."
)
DOWNLOADS = (
    "`wte`/`wpe` before and after training (CSV and `.npy`), the sum `x` for your text "
    "before and after (`.npy`, shape (B, T, d)), the TensorFlow Embedding "
    "Projector pair (load `vectors.tsv` and `metadata.tsv` at projector.tensorflow.org) "
    "and the model as safetensors."
)

CHIP_CSS = """
<style>
.ev-chips {display:flex; flex-wrap:wrap; gap:6px; margin:4px 0 10px 0;}
.ev-chip {display:inline-flex; flex-direction:column; align-items:center; padding:3px 9px;
  border-radius:8px; background:#e8f0fe; border:1px solid #9db7e8; font-size:1.05rem;}
.ev-chip.ev-unk {background:#fde7e7; border-color:#d98c8c;}
.ev-chip.ev-cut {background:#eee; border-style:dashed; color:#555; justify-content:center;}
.ev-tok {font-family:ui-monospace, monospace; font-weight:600; white-space:pre;}
.ev-meta {font-size:0.75rem; color:#444;}
</style>
"""
# Presentation mode: read from the back of a classroom; page furniture a teacher does not need is hidden.
PRESENTATION_CSS = """
<style>
html, .stApp {font-size: 21px;}
.stMarkdown p, .stMarkdown li {font-size: 1.15rem; line-height: 1.5;}
.ev-chip {font-size: 1.5rem; padding: 6px 14px; border-width: 2px;}
.ev-meta {font-size: 0.95rem; color: #000;}
[data-testid="stDownloadButton"], .st-key-share {display: none;}
</style>
"""


# Streamlit renders messages, captions and labels as Markdown with extensions: links and images
# `[a](u)`, KaTeX `$x$`, directives `:red[...]`, emoji and icon shortcodes `:smile:` `:material/x:`,
# bare URLs made into links. A backslash before any ASCII punctuation makes CommonMark, remark-math
# and remark-directive read the character as text; emoji and icon shortcodes are matched later, in
# the parsed text, so a word joiner (U+2060, invisible) after each colon breaks them up as well.
_LITERAL = str.maketrans({**{c: "\\" + c for c in "!\"#$%&'()*+,-./;<=>?@[\\]^_`{|}~"},
                          ":": "\\:\u2060",
                          "\r": " ", "\n": " "})  # one line: no heading, list or table can start


def literal(s: str) -> str:
    """`s` (a visitor's text, a file name, a message quoting either) escaped so that Streamlit's
    Markdown shows exactly its characters: no link, image, formatting, maths, colour or emoji."""
    return str(s).translate(_LITERAL)
