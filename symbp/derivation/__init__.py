"""Stage 4, the derivation: backpropagation as data (steps, reasons, chains, sections), built from the symbolic network
and printed by nobody here.
"""
