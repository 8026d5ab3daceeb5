"""bbbrun: a configurable experiment runner for Bayes-by-Backprop networks."""

__version__ = "0.1.0"
