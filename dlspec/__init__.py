"""dlspec: one declarative network spec compiled to scripts for many deep-learning frameworks."""

__version__ = "0.1.0"
