"""Canonical weights and batches drawn from a seed, their npz files, and library-weight import."""
