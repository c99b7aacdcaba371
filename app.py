"""embedviz: how a GPT turns text into vectors. Run with `streamlit run app.py`.

The page lives in embedviz/ui/. The import is inside the guard: a training process re-imports this
file as "__mp_main__" (multiprocessing's rule for the main module) and must not load the page.
Streamlit runs it as "__main__".
"""
if __name__ == "__main__":
    from embedviz.ui.page import main

    main()
