"""Stage 6, checks: the generated module's gradient against finite differences and the expanded loss, every printed
formula against the module, and hints from a trained network.
"""
