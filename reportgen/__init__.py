"""reportgen: reproducibility reports for PyTorch numerics."""

__version__ = "0.1.0"
