"""LaTeX rendering: SymPy's LaTeX printer taught the notation presets, the documents' view-models, formula widths, the
network drawing and running TeX.
"""
