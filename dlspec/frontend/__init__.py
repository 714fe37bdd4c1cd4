"""The front end: spec text to explicit IR (parse, lower, blocks, values), the pass pipeline's entry."""
