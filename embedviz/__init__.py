"""embedviz: how a GPT's first layer turns text into vectors, and how training organises them."""
