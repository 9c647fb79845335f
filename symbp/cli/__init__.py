"""The command line: argument parsing, one module per command under commands, the progress bar, the training pictures,
and the entry point.
"""
