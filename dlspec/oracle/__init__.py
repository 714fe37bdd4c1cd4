"""The float64 NumPy oracle: forward pass, reverse-mode gradients, canonical optimiser steps."""
