"""The Streamlit page: the only code in embedviz that imports Streamlit.

`page.main()` lays the page out; each other module is one part of it (controls, a tab, a section),
`loaders` holds the caches shared by every visitor and `text` the page's prose and CSS.
"""
