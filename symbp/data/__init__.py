"""Training data: bundled data sets, CSV, NPZ and MNIST IDX files read and validated for a spec, reproducible
validation splits, and .npy files read a chunk at a time as Dask arrays for data larger than memory.
"""
