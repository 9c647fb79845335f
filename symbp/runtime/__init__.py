"""The runtime of the generated NumPy modules: the training loop, the optimizers' update rules and the
numbers of a diagnosis, written once as ordinary, importable and tested Python. The generator copies
these modules' code verbatim into every module it writes (`symbp.render.code.runtime_source`), so a
generated module still needs NumPy alone; what differs between networks reaches the runtime as
arguments, never as template text.
"""
