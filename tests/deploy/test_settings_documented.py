"""The README's configuration table lists every setting the service reads,
and nothing it does not: a new setting cannot be left out of the docs."""

from __future__ import annotations

import re
from pathlib import Path

import typer.main

from ledger.cli import app
from ledger.settings import LedgerSettings

ROOT = Path(__file__).resolve().parents[2]


def documented_variables() -> set[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    first_cells = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {name for cell in first_cells for name in re.findall(r"`(LEDGER_[A-Z0-9_]+)`", cell)}


def settings_variables() -> set[str]:
    prefix = str(LedgerSettings.model_config.get("env_prefix", ""))
    return {prefix + name.upper() for name in LedgerSettings.model_fields}


def cli_variables() -> set[str]:
    """Variables read by command-line options (``envvar=``) of any ``ledger`` command."""
    commands = getattr(typer.main.get_command(app), "commands", {})
    assert commands, "the ledger CLI has no commands"
    found: set[str] = set()
    for command in commands.values():
        for param in command.params:
            envvars = param.envvar if isinstance(param.envvar, list | tuple) else [param.envvar]
            found.update(v for v in envvars if isinstance(v, str) and v.startswith("LEDGER_"))
    return found


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    missing = (settings_variables() | cli_variables()) - documented_variables()
    assert not missing, f"add to README.md, Configuration: {sorted(missing)}"


def test_the_readme_documents_no_setting_that_does_not_exist() -> None:
    unknown = documented_variables() - settings_variables() - cli_variables()
    assert not unknown, f"README.md documents settings nobody reads: {sorted(unknown)}"


def test_the_deployment_environment_file_sets_only_real_settings() -> None:
    text = (ROOT / "deploy" / "ledger.env.example").read_text()
    names = set(re.findall(r"^(LEDGER_[A-Z0-9_]+)=", text, flags=re.M))
    assert names, "deploy/ledger.env.example sets nothing"
    unknown = names - settings_variables() - cli_variables()
    assert not unknown, f"deploy/ledger.env.example sets unknown variables: {sorted(unknown)}"
