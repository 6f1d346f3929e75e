"""kitctl capture: take one capture from a device, directly or through the running daemon.

One module per modality (kitd.cli.capture_fingerprint, _iris, _signature) adds its command;
what they share is kitd.cli.capture_common.
"""

from __future__ import annotations

import argparse

from kitd.cli import capture_fingerprint, capture_iris, capture_signature

MODALITIES = (capture_fingerprint, capture_iris, capture_signature)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    capture = subparsers.add_parser("capture", help="take one capture from a device")
    kinds = capture.add_subparsers(dest="modality", required=True, parser_class=type(capture))
    for modality in MODALITIES:
        modality.add_modality(kinds)
