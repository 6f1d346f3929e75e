"""The root of every error the kit's software reports to a person, on the kit and the laptop.

kitd's own errors (kitd.errors) and the formats' (a signature that does not verify, a refused
receipt) all derive from :class:`KitError`, so that one ``except KitError`` catches a person's
problem and lets a programming error through.
"""

from __future__ import annotations


class KitError(Exception):
    """Base of every error the kit reports to a person."""
