"""The page's prose and CSS, in one place so wording can be checked and changed without touching layout."""
from __future__ import annotations

TITLE = "How a GPT turns text into vectors"
SUBTITLE = "tiktoken splits text into tokens; `nn.Embedding` tables turn them into vectors."

EXPLAIN_TOK = (
    "**Token embeddings** `wte(ids)`: each token picks one row of the table. The same token "
    "gets the same vector wherever it stands: a *static* meaning, before any context. These are "
    "random numbers now; training moves them so that tokens used alike end up alike."
)
EXPLAIN_POS = (
    "**Positional embeddings** `wpe(arange(T))`: one row per position `0 … T-1`, whatever the tokens. "
    "Attention scores depend on what the vectors hold, not on where they stand; the causal mask gives "
    "order only indirectly (each token sees just the tokens before it). GPT-2 adds a vector per position "
    "to make order explicit and *learns* these P rows like any other weights (the original Transformer "
    "used fixed sine waves; the Training tab compares them with RoPE, ALiBi and no positions)."
)
EXPLAIN_SUM = (
    "**Their sum** `x = wte(ids) + wpe(pos)` is what the first Transformer block receives. "
    "The blocks' attention then mixes information between positions and gives each token a "
    "*contextual* meaning."
)
# Where the numbers are shown: what the app draws, what GPT-2 draws, and why they differ.
INITIALISATION = (
    "Initialisation: `nn.Embedding` draws every number from N(0, 1), as here and in the tutorial. "
    "GPT-2 itself starts `wte` at N(0, 0.02²) and `wpe` at N(0, 0.01²). The tiny GPT of the Training tab "
    "keeps N(0, 1), so its tables start as exactly these, and divides its output logits by √d to make up "
    "for the larger scale (GPT-2 does not)."
)
ONE_GENERATOR = (
    "`wpe`'s numbers change when V or d changes: one generator draws `wte` first, then `wpe`, as "
    "`torch.manual_seed(s); nn.Embedding(V, d); nn.Embedding(P, d)` does."
)
CHIP_LEGEND = ("In a chip, `␣` is a space and `↵` a line break inside the token: GPT tokens usually carry "
               "the space before a word.")


def shortcut(*, vocab_size: int, encoding: str, n_vocab: int) -> str:
    """Said on the page whenever the table has fewer rows than the tokenizer has ids."""
    return (f"**Teaching shortcut, not what GPT-2 does:** this {vocab_size:,}-row table is smaller than "
            f"{encoding}'s {n_vocab:,} token ids, so rows 0 … {vocab_size - 2:,} go to the corpus's most "
            f"frequent tokens and every other token shares the `<unk>` row {vocab_size - 1:,}. A real GPT has "
            "one row per token id (GPT-2: 50,257) and byte-level BPE never needs `<unk>`. For a small "
            "vocabulary without the shortcut, choose the tokenizer **bpe**: it is trained to exactly V tokens.")


EXPLAIN_TRAINING = (
    "A tiny GPT learns to predict the next token of the corpus. Its `wte` and `wpe` start as the "
    "exact tables above; watch what training does to them."
)
MAP_LIMITS = (
    "A 2-D map cannot keep every distance of d dimensions: distances, gaps and cluster sizes in it are not "
    "faithful, only who sits near whom roughly is. The score above is computed in all d dimensions."
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
/* Phones: long code lines (the shapes) wrap rather than widen the page. */
@media (max-width: 640px) {
  .stMarkdown code {white-space: pre-wrap; overflow-wrap: anywhere;}
  [data-testid="stMainBlockContainer"] {padding-left: 0.75rem; padding-right: 0.75rem;}
}
</style>
"""
# Presentation mode: read from the back of a classroom; page furniture a teacher does not need is hidden.
PRESENTATION_CSS = """
<style>
html, .stApp {font-size: 21px;}
.stMarkdown p, .stMarkdown li {font-size: 1.15rem; line-height: 1.5;}
.ev-chip {font-size: 1.5rem; padding: 2px 14px; border-width: 2px;}
.ev-meta {font-size: 0.95rem; color: #000;}
[data-testid="stDownloadButton"], .st-key-share {display: none;}
/* Room on the first screen (1920 x 1080) for the chips and the first chart: less padding and space
   between elements, a smaller page title, no page subtitle, no "Input" label over its two options, a
   text box of two lines; a see-through header, so that it does not hide the title. Streamlit pulls the
   element after a Markdown block up by 1rem (a paragraph's margin), so the chips need a margin as large. */
[data-testid="stMainBlockContainer"] {padding-top: 0.4rem;}
[data-testid="stHeader"] {background: transparent;}
[data-testid="stMain"] [data-testid="stVerticalBlock"] {gap: 0.45rem;}
[data-testid="stMain"] h1 {font-size: 2.1rem; padding: 0.2rem 0;}
.stElementContainer:has(h1) + .stElementContainer [data-testid="stCaptionContainer"],
.st-key-mode [data-testid="stWidgetLabel"] {display: none;}
.st-key-text textarea {height: 3.4rem !important; min-height: 3.4rem !important;}
.ev-chips {margin-bottom: 1.2rem;}
/* Nothing under 20 px: captions and widget labels too. */
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] p, [data-testid="stWidgetLabel"] p,
[data-testid="stAlert"] p {font-size: 1rem;}
/* A wider sidebar whose buttons and select boxes wrap instead of ending in "…". */
[data-testid="stSidebar"] {width: 400px !important; min-width: 400px !important;}
[data-testid="stSidebar"] button p, [data-testid="stSidebar"] [data-baseweb="select"] div {
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important;}
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
