"""`dlspec verify`: every target's script against the oracle on canonical weights and batches."""
