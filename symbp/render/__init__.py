"""Stage 5, rendering: the same derivation printed as LaTeX documents (render.latex) and as trainer modules
(render.code), through SymPy's printers and Jinja2 templates.
"""
