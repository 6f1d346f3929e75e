"""Options shared by kitctl commands: which config to read and which daemon to ask."""

from __future__ import annotations

import argparse
import os
import sqlite3

from kitd.cli.daemon_client import DaemonClient, api_url_from_config, daemon_absent
from kitd.config import DEFAULT_CONFIG_PATH, KitConfig, builtin_config, load_config
from kitd.errors import ConfigError
from kitd.store.database import database_path, open_database


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        help=f"kitd config (default {DEFAULT_CONFIG_PATH} when it exists, else built-in defaults)",
    )


def add_api_option(where: argparse._ActionsContainer, parser: argparse.ArgumentParser) -> None:
    """--api in ``where`` (a group it may exclude others from), --token on ``parser``."""
    where.add_argument(
        "--api",
        metavar="URL",
        help="the daemon's TCP API, e.g. http://127.0.0.1:8080, with a sign-in token "
        "(default: the daemon's socket in data_dir, no token needed)",
    )
    parser.add_argument("--token", metavar="TOKEN", help="sign-in token for --api (default: $KITD_TOKEN)")


def config_from_args(args: argparse.Namespace) -> KitConfig:
    """The config named by --config (must exist), else the default file if any, else built-ins."""
    if getattr(args, "config", None) is not None:
        return load_config(args.config)
    if DEFAULT_CONFIG_PATH.exists():
        return load_config(DEFAULT_CONFIG_PATH)
    return builtin_config()


def client_from_args(args: argparse.Namespace) -> DaemonClient:
    token = getattr(args, "token", None) or os.environ.get("KITD_TOKEN")
    if getattr(args, "api", None):
        return DaemonClient(args.api, token)
    config = config_from_args(args)
    url = api_url_from_config(config)
    return DaemonClient(url, None if url.startswith("unix:") else token, daemon_absent(config))


def kit_database(config: KitConfig) -> sqlite3.Connection:
    """The kit's database, for a command that reads or changes what a kit already holds: a
    data_dir with no database is a wrong path (a typo, another config), not an empty kit,
    and is said so (a config error) rather than made."""
    path = database_path(config.data_dir)
    try:
        path.stat()
    except FileNotFoundError:
        where = f" (data_dir of {config.source})" if config.source else " (data_dir, built-in default)"
        raise ConfigError(
            f"no kit database at {path}{where}: is data_dir right? kitd's first start, "
            "kitctl officers add or orders import make it"
        ) from None
    except OSError:
        pass  # not ours to judge: opening it says why (permission denied, ...)
    return open_database(path)
