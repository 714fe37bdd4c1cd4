"""dlspec's LALR grammar, shipped as package data."""
