"""Options shared by kitctl commands: which config to read and which daemon to ask."""

from __future__ import annotations

import argparse

from kitd.cli.daemon_client import DaemonClient, api_url_from_config
from kitd.config import DEFAULT_CONFIG_PATH, KitConfig, builtin_config, load_config


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        help=f"kitd config (default {DEFAULT_CONFIG_PATH} when it exists, else built-in defaults)",
    )


def add_api_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", metavar="URL", help="the daemon's API, e.g. http://127.0.0.1:8080")


def config_from_args(args: argparse.Namespace) -> KitConfig:
    """The config named by --config (must exist), else the default file if any, else built-ins."""
    if getattr(args, "config", None):
        return load_config(args.config)
    if DEFAULT_CONFIG_PATH.exists():
        return load_config(DEFAULT_CONFIG_PATH)
    return builtin_config()


def client_from_args(args: argparse.Namespace) -> DaemonClient:
    if getattr(args, "api", None):
        return DaemonClient(args.api)
    return DaemonClient(api_url_from_config(config_from_args(args)))
