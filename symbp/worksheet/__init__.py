"""Stage 4, the worksheet: exercises on small numbers and their answers in exact arithmetic, drawn so that none is
degenerate, with the answer key's rounding rule.
"""
