"""The explicit IR (model.py), the tables of defaults (ops.py: layers; settings.py: training,
data, verify) and how stated values are read (attrs.py, inits.py)."""
