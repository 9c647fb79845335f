"""Stage 2, the registry: every activation and loss as one SymPy expression, and what SymPy derives from each entry
(derivatives, output forms, error terms).
"""
