"""Stage 1, the spec: reading TOML, JSON or a dict into plain dataclasses, every field checked, custom formulas parsed
without running them. Knows nothing of SymPy's derivation or of any output format.
"""
