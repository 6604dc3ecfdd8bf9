"""Every ``hub`` subcommand, given bad input, says so in one line with the documented exit code.

The subcommands are found by walking the argument parser, so a subcommand added later is
covered by the generic checks (an unknown option, missing input files, help on every
argument) without touching this file; the table below adds the specific bad inputs of issue 22.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

import hub
from hub.ledger import Ledger
from hub.ops.cli import (
    EXIT_CODES,
    EXIT_CONFIG,
    EXIT_FAILURE,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    build_parser,
    main,
)

DOCUMENTED = set(EXIT_CODES.values())
UNREACHABLE_BROKER = "amqp://guest:guest@127.0.0.1:1/"


def leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
           ) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every runnable subcommand (``("dlq", "ls")`` …) with its parser."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    for action in subs:
        for name, child in action.choices.items():
            yield from leaves(child, (*path, name))


LEAVES = dict(leaves(build_parser()))


def run_hub(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, [line for line in err.splitlines() if line.strip()], out


def assert_one_line(code: int, err: list[str], out: str) -> None:
    assert code in DOCUMENTED, (code, err)
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    assert "Traceback" not in out
    assert err[0].startswith("hub"), err


# -- fixtures: a configuration whose services are all unreachable or bad -------------------
@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(f"[broker]\nurl = '{UNREACHABLE_BROKER}'\n"
                    f"[ledger]\nurl = 'sqlite:///{tmp_path / 'ledger.sqlite3'}'\n", encoding="utf-8")
    # An existing, empty ledger: auditor commands never create one (a missing one is its own case)
    Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}").close()
    return path


def _pair(directory: Path, organ_id: str, passphrase: bytes | None) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, organ_id)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=90))
            .sign(key, hashes.SHA256()))
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase
        else serialization.NoEncryption())
    (directory / f"{organ_id}.key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    (directory / f"{organ_id}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@pytest.fixture(scope="module")
def mixed_keystore(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What a key rotation leaves: one encrypted key (passphrase 'right') and one plain key."""
    directory = tmp_path_factory.mktemp("keystore")
    _pair(directory, "000.00.01.H27", b"right")
    _pair(directory, "000.00.03.H27", None)
    return directory


@pytest.fixture
def keystore_cfg(cfg: Path, mixed_keystore: Path) -> Path:
    path = cfg.parent / "keystore.toml"
    path.write_text(cfg.read_text() + f"[hub]\nkeystore = '{mixed_keystore}'\n", encoding="utf-8")
    return path


@pytest.fixture
def envelope_file(tmp_path: Path) -> Path:
    from hub.edxml.build import build_envelope, sample_header

    path = tmp_path / "envelope.xml"
    path.write_bytes(build_envelope(sample_header("000.00.03.H27", ("000.00.00.H27",))))
    return path


# -- generic: every subcommand --------------------------------------------------------------
def test_the_walk_finds_the_subcommands_issue_22_names() -> None:
    names = {" ".join(path) for path in LEAVES}
    assert {"send", "receipt verify", "topology", "dlq ls", "dlq discard", "pki init",
            "ledger verify", "evidence export", "run", "demo", "doctor"} <= names


@pytest.mark.parametrize("path", sorted(LEAVES), ids=" ".join)
def test_an_unknown_option_is_one_usage_line_with_exit_code_2(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    code, err, out = run_hub([*path, "--no-such-option"], capsys)
    assert code == EXIT_USAGE
    assert_one_line(code, err, out)
    assert "error:" in err[0]


@pytest.mark.parametrize("path", sorted(LEAVES), ids=" ".join)
def test_every_argument_of_every_subcommand_has_help(path: tuple[str, ...]) -> None:
    parser = LEAVES[path]
    bare = [a.dest for a in parser._actions
            if not a.help and not isinstance(a, argparse._HelpAction | argparse._SubParsersAction)]
    assert bare == []


@pytest.mark.parametrize("path", sorted(LEAVES), ids=" ".join)
def test_missing_input_files_or_settings_are_one_line_never_a_traceback(
    path: tuple[str, ...], cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = LEAVES[path]
    positionals = [a for a in parser._actions if not a.option_strings and a.help != "==SUPPRESS=="]
    if not positionals:
        # Nothing to name a file with: a missing settings file instead (run and demo would
        # otherwise start for real).
        argv = ["--config", str(tmp_path / "missing.toml"), *path]
    else:
        args = [str((a.choices and next(iter(a.choices))) or tmp_path / "missing" / f"{a.dest}.xml")
                for a in positionals]
        argv = ["--config", str(cfg), *path, *args]
    code, err, out = run_hub(argv, capsys)
    assert "Traceback" not in out
    if code != 0:  # an output path (backup, pki init) may well be created: then it is no error
        assert_one_line(code, err, out)


def test_exit_codes_are_documented_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "exit codes:" in text
    for code in DOCUMENTED:
        assert f"\n  {code} " in text


def test_version_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"hub {hub.__version__}"


def test_python_dash_m_hub_is_the_same_command_line() -> None:
    done = subprocess.run([sys.executable, "-m", "hub", "dlq", "ls", "--older-than", "5x"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == EXIT_USAGE
    assert done.stderr.strip().count("\n") == 0
    assert "not a duration" in done.stderr
    assert "Traceback" not in done.stderr


# -- the specific bad inputs of issue 22 ----------------------------------------------------
def _cases(tmp: Path, cfg: Path, envelope: Path) -> list[tuple[str, list[str], int, str]]:
    a_file = tmp / "a-file"
    a_file.write_text("x")
    not_empty = tmp / "pki"
    not_empty.mkdir()
    (not_empty / "root-ca.pem").write_text("x")
    bad_prefetch = tmp / "prefetch.toml"
    bad_prefetch.write_text("[broker]\nprefetch = -5\n")
    passwords = tmp / "passwords.toml"
    passwords.write_text('"edxml-hub" = "s3cret"\n')
    c = ["--config", str(cfg)]
    missing = str(tmp / "missing.xml")
    return [
        ("send: missing file", [*c, "send", missing], EXIT_USAGE, "no such file"),
        ("send: broker down", [*c, "send", str(envelope)], EXIT_UNAVAILABLE, "unavailable"),
        ("send: not EDXML", [*c, "send", str(a_file)], EXIT_FAILURE, "ENVELOPE_"),
        ("receipt verify: missing file", [*c, "receipt", "verify", missing], EXIT_USAGE,
         "no such file"),
        ("receipt verify: missing envelope",
         [*c, "receipt", "verify", str(envelope), "--envelope", missing], EXIT_USAGE, "no such file"),
        ("topology export: into a missing directory",
         [*c, "topology", "export", "-o", "/nonexistent/dir/x.json"], EXIT_USAGE, "/nonexistent/dir"),
        ("topology export: passwords file missing",
         [*c, "topology", "export", "--passwords", missing], EXIT_USAGE, "no such file"),
        ("topology export: passwords for some accounts only",
         [*c, "topology", "export", "--passwords", str(passwords)], EXIT_CONFIG, "no password for"),
        ("topology apply: broker down", [*c, "topology", "apply"], EXIT_UNAVAILABLE, "unavailable"),
        ("run: prefetch -5", ["--config", str(bad_prefetch), "run"], EXIT_CONFIG, "prefetch"),
        ("demo: state dir under a file", [*c, "demo", "--state-dir", str(a_file / "d")],
         EXIT_USAGE, "a-file"),
        ("pki init: over an existing PKI", [*c, "pki", "init", str(not_empty)], EXIT_USAGE, "--force"),
        ("pki init: under a file", [*c, "pki", "init", str(a_file / "pki")], EXIT_USAGE, "a-file"),
        ("doctor: missing settings", ["--config", missing, "doctor"], EXIT_CONFIG, "not found"),
        ("dlq ls: bad duration", [*c, "dlq", "ls", "--older-than", "5x"], EXIT_USAGE,
         "not a duration"),
        ("dlq ls: unknown reason", [*c, "dlq", "ls", "--reason", "CERT_REVOKD"], EXIT_USAGE,
         "CERT_REVOKED"),
        ("dlq ls: broker down", [*c, "dlq", "ls"], EXIT_UNAVAILABLE, "unavailable"),
        ("dlq show: broker down", [*c, "dlq", "show", "abc"], EXIT_UNAVAILABLE, "unavailable"),
        ("dlq replay: nothing chosen", [*c, "dlq", "replay"], EXIT_USAGE, "say which"),
        ("dlq discard: blank note", [*c, "dlq", "discard", "abc", "--note", "  "], EXIT_USAGE,
         "blank"),
        ("dlq discard: no note", [*c, "dlq", "discard", "abc"], EXIT_USAGE, "--note"),
        ("dlq discard: unknown reason", [*c, "dlq", "discard", "--reason", "NOPE", "--note", "x"],
         EXIT_USAGE, "unknown reason"),
        ("ledger query: bad date", [*c, "ledger", "query", "--since", "yesterday"], EXIT_USAGE,
         "yesterday"),
        ("ledger query: unknown reason", [*c, "ledger", "query", "--reason", "X"], EXIT_USAGE,
         "unknown reason"),
        ("ledger report: bad date", [*c, "ledger", "report", "--until", "2026-13-01"], EXIT_USAGE,
         "2026-13-01"),
        ("ledger report: unwritable output",
         [*c, "ledger", "report", "--output", str(a_file / "r.csv")], EXIT_USAGE,
         "a-file"),
        ("ledger backup: unwritable path", [*c, "ledger", "backup", str(a_file / "b.zip")],
         EXIT_USAGE, "a-file"),
        ("ledger restore: missing file", [*c, "ledger", "restore", missing], EXIT_USAGE, "missing"),
        ("ledger verify: unknown database", [*c, "ledger", "verify", "--url", "nosuchdb://x"],
         EXIT_CONFIG, "nosuchdb"),
        ("evidence export: unknown document", [*c, "evidence", "export", "nope"], EXIT_USAGE,
         "nope"),
        ("evidence verify: missing bundle", [*c, "evidence", "verify", missing], EXIT_USAGE,
         "missing"),
    ]


_CASE_NAMES = [
    "send: missing file", "send: broker down", "send: not EDXML", "receipt verify: missing file",
    "receipt verify: missing envelope", "topology export: into a missing directory",
    "topology export: passwords file missing", "topology export: passwords for some accounts only",
    "topology apply: broker down", "run: prefetch -5", "demo: state dir under a file",
    "pki init: over an existing PKI", "pki init: under a file", "doctor: missing settings",
    "dlq ls: bad duration", "dlq ls: unknown reason", "dlq ls: broker down", "dlq show: broker down",
    "dlq replay: nothing chosen", "dlq discard: blank note", "dlq discard: no note",
    "dlq discard: unknown reason", "ledger query: bad date", "ledger query: unknown reason",
    "ledger report: bad date", "ledger report: unwritable output", "ledger backup: unwritable path",
    "ledger restore: missing file", "ledger verify: unknown database",
    "evidence export: unknown document", "evidence verify: missing bundle",
]


@pytest.mark.parametrize("name", _CASE_NAMES)
def test_a_bad_input_gets_one_line_naming_it_and_the_right_exit_code(
    name: str, tmp_path: Path, cfg: Path, envelope_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = {c[0]: c for c in _cases(tmp_path, cfg, envelope_file)}
    assert set(cases) == set(_CASE_NAMES)
    _name, argv, expected, fragment = cases[name]
    code, err, out = run_hub(argv, capsys)
    assert_one_line(code, err, out)
    assert code == expected, err
    assert fragment in err[0]


# -- keys -----------------------------------------------------------------------------------
def test_an_encrypted_key_without_a_passphrase_says_so_in_one_line(
    keystore_cfg: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUB_KEY_PASSPHRASE", raising=False)
    code, err, out = run_hub(["--config", str(keystore_cfg), "run"], capsys)
    assert_one_line(code, err, out)
    assert code == EXIT_CONFIG
    assert "000.00.01.H27.key.pem" in err[0]
    assert "encrypted and no passphrase" in err[0]
    assert "TypeError" not in err[0]


def test_a_wrong_passphrase_says_so_in_one_line(
    keystore_cfg: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUB_KEY_PASSPHRASE", "wrong")
    code, err, out = run_hub(["--config", str(keystore_cfg), "run"], capsys)
    assert_one_line(code, err, out)
    assert code == EXIT_CONFIG
    assert "wrong passphrase" in err[0]
    assert "wrong" not in err[0].replace("wrong passphrase", "")  # the passphrase is not echoed


def test_one_passphrase_opens_a_keystore_that_mixes_encrypted_and_plain_keys(
    mixed_keystore: Path
) -> None:
    from hub.trust.keystore import Keystore

    keystore = Keystore.load(mixed_keystore, b"right")
    assert sorted(keystore) == ["000.00.01.H27", "000.00.03.H27"]


# -- values too large or out of range (review of the argument types) ------------------------
_OUT_OF_RANGE = [
    # (id, argv after --config, the value the line must name, what it must say)
    ("dlq ls: more days than a duration holds", ["dlq", "ls", "--older-than", "99999999999d"],
     "99999999999d", "too long"),
    ("dlq ls: a duration of 10**400 days", ["dlq", "ls", "--older-than", "9" * 400 + "d"],
     "999999", "too long"),
    ("ledger query: a since past the year 9999 in UTC",
     ["ledger", "query", "--since", "9999-12-31T23:59:59-14:00"], "9999-12-31T23:59:59-14:00",
     "out of range"),
    ("ledger query: an until before the year 1 in UTC",
     ["ledger", "query", "--until", "0001-01-01T00:00+14:00"], "0001-01-01T00:00+14:00",
     "out of range"),
    ("ledger report: a since past the year 9999 in UTC",
     ["ledger", "report", "--since", "9999-12-31T23:59:59-14:00"], "9999-12-31T23:59:59-14:00",
     "out of range"),
    ("ledger report: a since in the last day a date holds",
     ["ledger", "report", "--since", "9999-12-31T23:59:59Z"], "9999-12-31T23:59:59Z",
     "out of range"),
    ("subscribers report: an at past the year 9999 in UTC",
     ["subscribers", "report", "--at", "9999-12-31T23:59:59-14:00"], "9999-12-31T23:59:59-14:00",
     "out of range"),
    ("subscribers report: an at in the last day a date holds",
     ["subscribers", "report", "--at", "9999-12-31T12:00Z"], "9999-12-31T12:00Z", "out of range"),
    ("subscribers notices: an at before the year 1 in UTC",
     ["subscribers", "notices", "--at", "0001-01-01T00:00+14:00"], "0001-01-01T00:00+14:00",
     "out of range"),
    ("subscribers notices: an at in the last day a date holds",
     ["subscribers", "notices", "--at", "9999-12-31T23:59:59Z", "--no-sync"],
     "9999-12-31T23:59:59Z", "out of range"),
]


@pytest.mark.parametrize(("argv", "value", "says"), [c[1:] for c in _OUT_OF_RANGE],
                         ids=[c[0] for c in _OUT_OF_RANGE])
def test_a_value_out_of_range_is_one_usage_line_naming_it_not_a_traceback_or_a_bug(
    argv: list[str], value: str, says: str, cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err, out = run_hub(["--config", str(cfg), *argv], capsys)
    assert_one_line(code, err, out)
    assert code == EXIT_USAGE, err
    assert value in err[0]
    assert says in err[0]
    assert "internal error" not in err[0]


@pytest.mark.parametrize("argv", [
    ["ledger", "query", "--since", "0001-01-02T00:00Z", "--until", "9999-12-30T23:59:59Z"],
    ["ledger", "report", "--since", "9999-12-30T23:59:59Z"],
    ["subscribers", "notices", "--at", "9999-12-31T06:59:59+07:00", "--no-sync"],
], ids=["ledger query", "ledger report", "subscribers notices"])
def test_the_first_and_last_instants_accepted_run_the_command(
    argv: list[str], cfg: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err, out = run_hub(["--config", str(cfg), *argv], capsys)
    assert code == 0, err
    assert "Traceback" not in out


def test_an_argument_type_failing_in_an_unforeseen_way_is_one_usage_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an argument type that raises what argparse does not turn into a usage error
    def overflowing(text: str) -> Path:
        raise OverflowError("Python int too large to convert to C int")

    monkeypatch.setattr("hub.ops.cli.existing_file", overflowing)
    monkeypatch.delenv("HUB_DEBUG", raising=False)
    # When the command line is read
    code, err, out = run_hub(["send", str(tmp_path / "x.xml")], capsys)
    # Then one usage line, exit code 2
    assert_one_line(code, err, out)
    assert code == EXIT_USAGE
    assert "bad command line" in err[0]
    assert "too large" in err[0]


def test_python_dash_m_hub_answers_a_duration_too_large_in_one_usage_line() -> None:
    done = subprocess.run([sys.executable, "-m", "hub", "dlq", "ls", "--older-than",
                           "99999999999d"], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == EXIT_USAGE
    assert done.stderr.strip().count("\n") == 0
    assert "99999999999d" in done.stderr
    assert "Traceback" not in done.stderr
