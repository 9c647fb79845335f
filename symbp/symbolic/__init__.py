"""Stage 3, the symbolic network: the spec turned into SymPy objects (the layer-level network, the named quantities,
the fully expanded scalar loss and exact-arithmetic descent). No LaTeX and no array syntax live here.
"""
