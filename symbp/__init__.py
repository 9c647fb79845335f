"""symbp: backpropagation derived by SymPy, rendered as LaTeX and as standalone NumPy trainers."""

__version__ = "0.1.0"
