"""`taskledger users list|remove|token --expires-in` and `taskledger tokens list|revoke`."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

import pytest

from taskledger.accounts import PostgresAccounts, Principal
from taskledger.cli import main

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture(scope="module")
def url(new_database: Callable[[], str]) -> str:
    return new_database()


@pytest.fixture
def run(url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    """Runs `taskledger ARGV...` in this process against the test database: (exit code, stdout, stderr)."""
    def call(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setenv("TASKLEDGER_DATABASE_URL", url)
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        capsys.readouterr()
        try:
            code = main(list(argv))
        except SystemExit as exit_:  # argparse refusing an argument
            code = int(exit_.code or 0)
        out, err = capsys.readouterr()
        return code, out, err
    return call


@pytest.fixture
def accounts(url: str) -> Iterator[PostgresAccounts]:
    store = PostgresAccounts(url, max_size=1)
    store.open()
    yield store
    store.close()


def test_users_list_shows_name_role_and_creation_but_never_a_hash(run: Run) -> None:
    assert run("users", "add", "list-ann", "--role", "operator", "--password-stdin", stdin="ann-password\n")[0] == 0
    assert run("users", "add", "list-bob", "--role", "viewer", "--password-stdin", stdin="bob-password\n")[0] == 0

    code, out, _ = run("users", "list")

    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "ROLE", "CREATED"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["list-ann"][1] == "operator" and rows["list-bob"][1] == "viewer"
    assert rows["list-ann"][2].endswith("Z") and "T" in rows["list-ann"][2]
    assert "argon2" not in out and "password" not in out


def test_users_remove_deletes_the_user_and_its_tokens(run: Run, accounts: PostgresAccounts) -> None:
    run("users", "add", "gone-carl", "--role", "worker", "--password-stdin", stdin="carl-password\n")
    code, token, _ = run("users", "token", "gone-carl")
    assert code == 0 and accounts.authenticate_token(token.strip()) == Principal("gone-carl", "worker")

    code, out, _ = run("users", "remove", "gone-carl")

    assert code == 0 and "removed" in out
    assert accounts.authenticate_basic("gone-carl", "carl-password") is None
    assert accounts.authenticate_token(token.strip()) is None
    assert "gone-carl" not in run("users", "list")[1]
    assert run("tokens", "list", "--user", "gone-carl")[1].splitlines()[1:] == []
    code, _, err = run("users", "remove", "gone-carl")
    assert code == 1 and "no user 'gone-carl'" in err


def test_a_token_minted_with_an_expiry_is_listed_with_it_and_revoked_by_its_id(
        run: Run, accounts: PostgresAccounts) -> None:
    run("users", "add", "tok-dana", "--role", "worker", "--password-stdin", stdin="dana-password\n")

    code, out, err = run("users", "token", "tok-dana", "--label", "deploy", "--expires-in", "30d")

    assert code == 0
    token = out.strip()
    assert token.startswith("tl_") and len(out.splitlines()) == 1  # stdout is only the token, for scripts
    token_id = err.split()[1]
    assert "expires 20" in err
    listed = run("tokens", "list", "--user", "tok-dana")[1].splitlines()
    assert listed[0].split() == ["ID", "USER", "LABEL", "CREATED", "EXPIRES"]
    assert listed[1].split()[:3] == [token_id, "tok-dana", "deploy"] and listed[1].split()[4] != "never"
    assert token not in "\n".join(listed)

    code, out, _ = run("tokens", "revoke", token_id)

    assert code == 0 and token_id in out
    assert accounts.authenticate_token(token) is None
    assert run("tokens", "revoke", token_id)[0] == 1


def test_a_token_is_revoked_by_the_token_itself_too(run: Run, accounts: PostgresAccounts) -> None:
    run("users", "add", "tok-erin", "--role", "viewer", "--password-stdin", stdin="erin-password\n")
    token = run("users", "token", "tok-erin")[1].strip()
    assert run("tokens", "list", "--user", "tok-erin")[1].splitlines()[1].split()[-1] == "never"

    assert run("tokens", "revoke", token)[0] == 0

    assert accounts.authenticate_token(token) is None


@pytest.mark.parametrize("duration", ["0", "-1d", "30x", "1.5h", "", "4000d"])
def test_a_bad_token_lifetime_is_refused_naming_the_option(run: Run, duration: str) -> None:
    code, _, err = run("users", "token", "anyone", f"--expires-in={duration}")

    assert code == 2
    assert "--expires-in" in err and "30d" in err


def test_tokens_revoke_of_something_that_is_no_token_says_what_to_give(run: Run) -> None:
    code, _, err = run("tokens", "revoke", "not-a-token")

    assert code == 1 and "tokens list" in err
