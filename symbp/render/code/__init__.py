"""Code rendering: SymPy's NumPy printer taught a trainer's shapes, the in-place training step, and the module
template's data; other array libraries under backends.
"""
