"""``python -m kitsync``: the kit-sync command line."""

from kitsync.cli import run

run()
