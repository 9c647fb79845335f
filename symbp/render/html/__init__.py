"""HTML renderers: the derivation and the worksheet as self-contained pages (MathML, inline SVG, inline CSS),
and the notebook display of the objects the Python API returns. They render the same view-models as the
LaTeX documents (``symbp.render.latex.document`` and ``worksheet_document``), so the two cannot drift apart.
"""
