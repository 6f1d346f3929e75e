"""Ground truth for calibrating the kit's assessors on real data: marks made by hand, the
tools that make and draw them, and the measurements of the assessors against them.

Nothing in :mod:`kitd` imports it; it reads the real data in ``../shared/fixtures`` (never
copied here) and commits only facts measured on it (``groundtruth/data``).
"""
