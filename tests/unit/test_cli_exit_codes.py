"""``hub``'s exit codes: the help and the README say the same; an interrupt and a metrics port
that cannot be used end in one line (or none), with their code, never a traceback."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from hub import __main__ as launcher
from hub.ops import envelope_cli
from hub.ops.cli import EXIT_CODES, EXIT_CONFIG, EXIT_INDETERMINATE, EXIT_INTERRUPTED, main
from tests.integration.pipeline.harness import make_pki

ROOT = Path(__file__).resolve().parents[2]


def _readme_exit_codes() -> dict[int, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    paragraph = " ".join(text.split("Exit codes: ", 1)[1].split(". A user error", 1)[0].split())
    return {int(code): what.strip() for code, what in
            re.findall(r"(?:^|, )(\d+) (.*?)(?=, \d+ |$)", paragraph)}


def _help_exit_codes(capsys: pytest.CaptureFixture[str]) -> dict[int, str]:
    assert main(["--help"]) == 0
    block = capsys.readouterr().out.split("exit codes:\n", 1)[1]
    return {int(code): what for code, what in re.findall(r"^  (\d+) +(.*)$", block, re.M)}


def test_the_help_and_the_readme_list_the_same_exit_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the codes `hub --help` lists and the ones the README lists
    helped, documented = _help_exit_codes(capsys), _readme_exit_codes()
    # Then they are the same codes, the named constants' among them
    assert set(helped) == set(documented)
    assert set(EXIT_CODES.values()) <= set(helped)
    # And they agree on what the less obvious ones cover
    assert "signing token" in helped[4]
    assert "signing token" in documented[4]
    assert EXIT_INDETERMINATE == envelope_cli.EXIT_INDETERMINATE == 5
    assert "check" in helped[5]
    assert "check" in documented[5]


def test_ctrl_c_while_the_command_line_loads_exits_130_without_a_traceback() -> None:
    # Given Ctrl-C arriving while the console script imports the command line (its first
    # half second: pydantic, cryptography, lxml ...)
    script = ("import builtins, sys\n"
              "real = builtins.__import__\n"
              "def interrupted(name, *args, **kwargs):\n"
              "    if name == 'hub.ops.cli':\n"
              "        raise KeyboardInterrupt\n"
              "    return real(name, *args, **kwargs)\n"
              "builtins.__import__ = interrupted\n"
              "from hub.__main__ import launch\n"
              "sys.exit(launch())\n")
    # When it runs
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=False)
    # Then it exits with the interrupt's code, silently
    assert done.returncode == EXIT_INTERRUPTED == launcher.EXIT_INTERRUPTED == 130
    assert done.stderr == ""


def test_the_console_scripts_start_through_the_launcher() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))[
        "project"]["scripts"]
    assert scripts == {"hub": "hub.__main__:launch", "edxml-hub": "hub.__main__:launch"}


def test_a_metrics_port_in_use_stops_hub_run_with_a_configuration_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    # Given settings whose [metrics] port another process listens on
    pki = make_pki(tmp_path / "pki")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = tmp_path / "hub.toml"
        cfg.write_text(
            "[broker]\nurl = 'amqp://guest:guest@127.0.0.1:1/'\n"
            f"[ledger]\nurl = 'sqlite:///{tmp_path / 'ledger.sqlite3'}'\n"
            f"[trust]\nroots = ['{pki.root_cert}']\nintermediates = ['{pki.issuing_ca_cert}']\n"
            f"crls = ['{pki.crl_der}', '{pki.root_crl_der}']\nfetch_crls = false\n"
            f"public_roots = ['{pki.public_root_cert}']\npolicy_oids = ['{pki.policy_oid}']\n"
            f"[hub]\nkeystore = '{pki.keystore}'\n"
            f"[metrics]\nport = {port}\n", encoding="utf-8")
        # When `hub run` starts (it takes SIGTERM and SIGINT: given back to pytest after)
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            code = main(["--config", str(cfg), "run"])
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
    # Then it stops at once: a configuration error (systemd does not restart it), one line
    # naming the setting and the address
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("hub: ")]
    assert code == EXIT_CONFIG
    assert err == [f"hub: configuration: [metrics] port: cannot listen on 127.0.0.1:{port}: "
                   "Address already in use"]
