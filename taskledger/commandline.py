"""What every `taskledger` subcommand's parser is built with: one way to add a command and to read seconds."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from taskledger.config import Settings

Handler = Callable[[argparse.Namespace, Settings], int]


def add_command(commands: argparse._SubParsersAction, name: str, help_text: str,  # type: ignore[type-arg]
                handler: Handler | None, example: str) -> argparse.ArgumentParser:
    """A subcommand with its help, an example in its epilog, and its handler (None: it has subcommands)."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=help_text, description=help_text, epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(handler=handler)
    return parser


def seconds(text: str) -> float:
    """An argument in seconds, more than 0 and at most an hour."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds more than 0 and at most 3600")
    return value
