"""Code generation shared by every backend: compile, render + black, the script contract, files."""
