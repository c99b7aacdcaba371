"""The plain way to write the page, for the benchmark's browser section to compare against (run as
`streamlit run benchmarks/plain_page.py`; not part of the app)."""
import plotly.graph_objects as go
import streamlit as st
import torch

torch.manual_seed(0)
wte = torch.nn.Embedding(256, 32)
x = wte(torch.arange(12)).detach().numpy()
st.plotly_chart(go.Figure(go.Heatmap(z=x)), key="heatmap")
if st.button("Train", key="train"):
    import umap
    from benchmarks.training import plain_page_training

    for key, rows in zip(("scatter_before", "scatter_after"), plain_page_training()):
        xy = umap.UMAP(random_state=0).fit_transform(rows)
        st.plotly_chart(go.Figure(go.Scatter(x=xy[:, 0], y=xy[:, 1], mode="markers")), key=key)
