"""The first minutes of a new user: help, version, and a command that works in an empty folder."""

import argparse
import json
import subprocess
import sys
from pathlib import Path

from symbp.cli.main import COMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parent.parent
ENV = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
JOBS = ("generate", "check", "derive", "worksheet", "grade", "train", "predict", "diagnose", "reproduce", "demo",
        "examples")


def python(*args, cwd=None):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=ENV, timeout=300)


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return action.choices


def test_python_dash_m_without_a_command_prints_the_help_like_symbp(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")  # argparse wraps to the terminal; the subprocess has none
    result = python("-m", "symbp")
    assert result.returncode == 0 and result.stderr == ""
    assert main([]) == 0
    assert capsys.readouterr().out == result.stdout
    assert result.stdout.startswith("usage: symbp ")
    section = result.stdout.split("commands:")[1].splitlines()[2:]
    listed = [line.split()[0] for line in section if line.startswith("    ") and not line.startswith("     ")]
    assert listed == list(JOBS)


def test_version_imports_neither_sympy_nor_numpy():
    probe = ("import json, sys\n"
             "from symbp.cli.main import main\n"
             "try:\n    main(['--version'])\nexcept SystemExit as done:\n    code = done.code\n"
             "print(json.dumps([code, sorted(m for m in ('sympy', 'numpy', 'jinja2') if m in sys.modules)]))\n")
    result = python("-c", probe)
    assert result.returncode == 0, result.stderr
    version_line, report = result.stdout.splitlines()
    assert version_line.startswith("symbp ")
    assert json.loads(report) == [0, []]


def test_help_loads_no_command_module():
    probe = ("import sys\nfrom symbp.cli.main import main\nmain([])\n"
             "print(sorted(m for m in sys.modules\n"
             "             if m.startswith('symbp.cli.commands.') or m in ('sympy', 'numpy')))\n")
    result = python("-c", probe)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


def test_every_command_has_a_description_and_an_example():
    commands = subcommands(build_parser(every=True))
    assert list(commands) == list(JOBS) or set(commands) == set(JOBS), sorted(commands)
    for name, parser in commands.items():
        assert name in COMMANDS, f"{name} is missing from symbp.cli.main.COMMANDS"
        assert parser.get_default("run") is not None, name
        assert len(parser.description.split()) >= 12, name
        heading, example = parser.epilog.split("\n", 1)
        assert heading == ("example:" if len(example.splitlines()) == 1 else "examples:"), name
        assert all(line.startswith(f"  symbp {name}") for line in example.splitlines()), (name, example)
        assert parser.epilog in parser.format_help()


def test_each_command_loads_only_its_own_module():
    for name in COMMANDS:
        parser = build_parser(name)
        assert subcommands(parser)[name].get_default("run") is not None, name


def test_generate_in_an_empty_folder_creates_generated(tmp_path):
    result = python("-m", "symbp", "generate", "xor", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["created folder generated/", "wrote generated/xor.py (9 parameters)"]
    assert (tmp_path / "generated" / "xor.py").read_text().count("def train(") == 1
    again = python("-m", "symbp", "generate", "xor", cwd=tmp_path)
    assert again.stdout.splitlines() == ["wrote generated/xor.py (9 parameters)"]


def test_generate_with_an_output_in_a_missing_folder_still_refuses(tmp_path):
    result = python("-m", "symbp", "generate", "xor", "-o", "elsewhere/xor.py", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("symbp: error: elsewhere: directory does not exist")
    assert list(tmp_path.iterdir()) == []
