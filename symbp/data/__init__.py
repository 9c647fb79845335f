"""Training data: bundled data sets, CSV, NPZ and MNIST IDX files read and validated for a spec, and reproducible
validation splits.
"""
