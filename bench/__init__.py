"""Benchmarks of the kit: `python -m bench [NAME ...] [--smoke]`; each prints figures and ratios."""
