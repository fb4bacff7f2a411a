"""`taskledger users add|token|list|remove` and `taskledger tokens list|revoke`: API users and their tokens."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import re
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from taskledger.commandline import add_command as _add
from taskledger.config import Settings

if TYPE_CHECKING:
    from taskledger.accounts import PostgresAccounts

Handler = Callable[[argparse.Namespace, Settings], int]
USAGE = 2  # the command could not run, as for a refused argument


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """`users add|token|list|remove` and `tokens list|revoke`."""
    users = _add(commands, "users", "manage API users and mint their tokens", None,
                 "taskledger users add bob --role viewer")
    user_commands = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = _add(user_commands, "add", "create a user or reset its password and role", cmd_users_add,
               "echo s3cret-pass | taskledger users add bob --role worker --password-stdin")
    add.add_argument("name", type=_user_name)
    add.add_argument("--role", required=True, choices=("admin", "operator", "worker", "viewer"))
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    token = _add(user_commands, "token", "mint a bearer token for a user (printed once, on stdout)",
                 cmd_users_token, "taskledger users token bob --label deploy-bot --expires-in 30d")
    token.add_argument("name")
    token.add_argument("--label", type=_label)
    token.add_argument("--expires-in", type=_duration, metavar="DURATION",
                       help="valid for this long: 3600, 90m, 12h or 30d (default: until revoked)")
    _add(user_commands, "list", "list users: name, role, created (never a password hash)", cmd_users_list,
         "taskledger users list")
    remove = _add(user_commands, "remove", "remove a user and its tokens (refused from the next request on)",
                  cmd_users_remove, "taskledger users remove bob")
    remove.add_argument("name")
    tokens = _add(commands, "tokens", "list and revoke bearer tokens", None, "taskledger tokens list --user bob")
    token_commands = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    listing = _add(token_commands, "list", "list tokens: id, user, label, created, expires (never a secret)",
                   cmd_tokens_list, "taskledger tokens list --user bob")
    listing.add_argument("--user", help="only this user's tokens")
    revoke = _add(token_commands, "revoke", "revoke a token, named by its id or by itself (refused from the "
                  "next request on)", cmd_tokens_revoke, "taskledger tokens revoke 3f9a0c1d2b4e5f60")
    revoke.add_argument("token", metavar="TOKEN-OR-ID", help="the id `tokens list` shows, or the tl_… token")


def cmd_users_add(args: argparse.Namespace, settings: Settings) -> int:
    with _accounts(settings) as accounts:  # the database first: no password typed for nothing
        try:
            password = sys.stdin.readline().rstrip("\n") if args.password_stdin else getpass.getpass("password: ")
        except EOFError:
            password = ""
        if len(password) < 8:
            print("taskledger users add: the password must have at least 8 characters", file=sys.stderr)
            return USAGE
        accounts.create_user(args.name, password, args.role)
    print(f"user {args.name} ({args.role}) saved; its old password and role are refused from the next request on")
    return 0


def cmd_users_token(args: argparse.Namespace, settings: Settings) -> int:
    with _accounts(settings) as accounts:
        issued = accounts.create_token(args.name, args.label, args.expires_in)
    if issued is None:
        print(f"no user {args.name!r}; create it first with `taskledger users add`", file=sys.stderr)
        return 1
    print(issued.token)
    expiry = f"expires {_when(issued.expires_at)}" if issued.expires_at else "valid until revoked"
    print(f"token {issued.id} for {issued.user}, {expiry}", file=sys.stderr)
    return 0


def cmd_users_list(args: argparse.Namespace, settings: Settings) -> int:
    with _accounts(settings) as accounts:
        users = accounts.list_users()
    _table(("NAME", "ROLE", "CREATED"), [(u.name, u.role, _when(u.created_at)) for u in users])
    return 0


def cmd_users_remove(args: argparse.Namespace, settings: Settings) -> int:
    with _accounts(settings) as accounts:
        removed = accounts.remove_user(args.name)
    if not removed:
        print(f"no user {args.name!r}; `taskledger users list` shows them", file=sys.stderr)
        return 1
    print(f"user {args.name} removed, with its tokens")
    return 0


def cmd_tokens_list(args: argparse.Namespace, settings: Settings) -> int:
    with _accounts(settings) as accounts:
        tokens = accounts.list_tokens(args.user)
    _table(("ID", "USER", "LABEL", "CREATED", "EXPIRES"),
           [(t.id, t.user, t.label or "-", _when(t.created_at), _when(t.expires_at) if t.expires_at else "never")
            for t in tokens])
    return 0


def cmd_tokens_revoke(args: argparse.Namespace, settings: Settings) -> int:
    with _accounts(settings) as accounts:
        revoked = accounts.revoke_token(args.token.strip())
    if revoked is None:
        print("no such token: give the id `taskledger tokens list` shows, or the token itself", file=sys.stderr)
        return 1
    print(f"token {revoked.id} of {revoked.user} revoked")
    return 0


@contextlib.contextmanager
def _accounts(settings: Settings) -> Iterator[PostgresAccounts]:
    from api.auth import CredentialsUnavailableError
    from taskledger.accounts import PostgresAccounts
    from taskledger.preflight import CONNECT_TIMEOUT, DatabaseUnavailableError, ready_database

    url, _server = ready_database(settings)
    accounts = PostgresAccounts(url, max_size=1)
    accounts.open(timeout=CONNECT_TIMEOUT)
    try:
        yield accounts
    except CredentialsUnavailableError as exc:  # the database went away after the check
        raise DatabaseUnavailableError(f"{exc}; run the command again") from None
    finally:
        accounts.close()


DURATION = re.compile(r"(\d+)([smhd]?)")
UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_TOKEN_SECONDS = 10 * 365 * 86400


def _duration(text: str) -> int:
    """`3600`, `90m`, `12h`, `30d` as seconds, from 1 s to 10 years."""
    match = DURATION.fullmatch(text.strip().lower())
    seconds = int(match[1]) * UNIT_SECONDS[match[2]] if match else 0
    if not 0 < seconds <= MAX_TOKEN_SECONDS:
        raise argparse.ArgumentTypeError("must be a whole number of seconds, or of minutes, hours or days with "
                                         "m, h or d (3600, 90m, 12h, 30d), from 1 second to 10 years")
    return seconds


def _user_name(text: str) -> str:
    """What the API accepts as a user name: it must travel in Basic credentials, so no `:`."""
    if not 1 <= len(text) <= 100 or not text.isprintable() or ":" in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a user name: 1 to 100 printable characters, no ':'")
    return text


def _label(text: str) -> str:
    if len(text) > 200 or not text.isprintable():
        raise argparse.ArgumentTypeError(f"{text!r} is not a label: at most 200 printable characters")
    return text


def _when(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    for row in (header, *rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
