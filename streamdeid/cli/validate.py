"""``streamdeid validate-config``: check a config and print every setting it resolves to.

The resolved YAML goes to stdout, so it can be saved as a complete config file.
"""

from __future__ import annotations

import argparse

from streamdeid.cli._common import Subparsers, add_common
from streamdeid.config import Config, load_config


def register(sub: Subparsers) -> None:
    """Add ``validate-config``."""
    val = sub.add_parser(
        "validate-config",
        help="check a config file and print it resolved",
        description="Validate a YAML config (unknown keys and out-of-range "
        "values are errors) and print the full resolved settings.",
    )
    val.add_argument("config", metavar="FILE", help="YAML config file or bundled config name")
    add_common(val)
    val.set_defaults(handler=cmd_validate)


def cmd_validate(args: argparse.Namespace) -> int:
    import yaml

    config: Config = load_config(args.config)
    print(f"# {args.config}: valid")
    print(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False).rstrip())
    return 0
