"""The explicit IR (model.py) and the op table of defaults (ops.py) with its initialisers."""
