"""`evnet hal-check`: what a person runs on a freshly wired Pi (filled in as the HAL lands)."""

from __future__ import annotations

import argparse

from evnet.config import load_config


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="evnet hal-check", description=__doc__)
    parser.add_argument("--config", help="the charge point's TOML file")
    parser.add_argument("--mock", action="store_true", help="mock GPIO and the simulated meter and pilot")
    args = parser.parse_args(argv)
    if args.config:
        load_config(args.config)
    return 1
