"""The largest spec dlspec accepts: every size limit in one table, each checked with a position.

The limits are what every target can hold, not style: frameworks, cuDNN and NumPy's seeding index
with int32, the scripts compute in float32, and a spec must compile in seconds.
"""

from __future__ import annotations

INT32_MAX = 2**31 - 1
MAX_INT = INT32_MAX  # any integer in a spec: a size, a count, a seed, a dataset id
FLOAT32_MAX = 3.4028234663852886e38  # any real in a spec: the scripts compute in float32
FLOAT32_TINY = 1.401298464324817e-45  # smallest float32 above zero; a smaller real reads as 0
MAX_NUMBER_DIGITS = 40  # an integer literal longer than this exceeds every limit above
MAX_NAME_LENGTH = 64  # model, input and layer names (file names, attributes, npz keys)
MAX_NESTING = 16  # lists and calls inside one value
MAX_BLOCK_DEPTH = 16  # blocks calling blocks (a block that calls none is 1 deep)
MAX_LAYERS = 1024  # layers in one model, activation sugar included (compile ~1.2 s, all targets)
MAX_STACKED = 64  # recurrent layers stacked by one `layers=`
MAX_TENSOR = INT32_MAX  # elements of one sample's activation, and of a batch of it
MAX_PARAMS = INT32_MAX  # trainable scalars in a model (8 GiB of float32)
MAX_SPEC_BYTES = 4 * 1024 * 1024  # a spec file
MAX_PROBLEMS_SHOWN = 100  # problems printed for one file; the rest are counted
