"""The command line as a person uses it."""

import subprocess
import sys
from pathlib import Path

import pytest

from symbp.cli.main import main

ROOT = Path(__file__).resolve().parent.parent
GOOD = """name = "net"
inputs = 2
[[layers]]
units = 2
activation = "tanh"
[[layers]]
units = 1
activation = "linear"
"""


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "symbp", *args], capture_output=True, text=True, cwd=cwd,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_demo_reproduces_the_lab():
    result = run("demo")
    assert result.returncode == 0, result.stderr
    assert "PASS" in result.stdout.splitlines()[-1]


def test_generate_writes_a_module(tmp_path):
    (tmp_path / "net.toml").write_text(GOOD)
    assert main(["generate", str(tmp_path / "net.toml"), "-o", str(tmp_path / "net.py")]) == 0
    assert "def loss_and_grad" in (tmp_path / "net.py").read_text()
    # symbp's own output is overwritten without --force
    assert main(["generate", str(tmp_path / "net.toml"), "-o", str(tmp_path / "net.py")]) == 0


def test_generate_refuses_to_clobber_a_foreign_file(tmp_path, capsys):
    (tmp_path / "net.toml").write_text(GOOD)
    mine = tmp_path / "mine.py"
    mine.write_text("precious = True\n")
    assert main(["generate", str(tmp_path / "net.toml"), "-o", str(mine)]) == 2
    assert mine.read_text() == "precious = True\n"
    assert "--force" in capsys.readouterr().err
    assert main(["generate", str(tmp_path / "net.toml"), "-o", str(mine), "--force"]) == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (GOOD.replace('"tanh"', '"sigmod"'), "layers[0].activation: unknown 'sigmod'; did you mean 'sigmoid'?"),
        (GOOD.replace("units = 2", "units = 0"), "layers[0].units: must be at least 1"),
        ("name = [", "invalid TOML"),
    ],
)
def test_bad_spec_is_one_line_exit_2_and_writes_nothing(tmp_path, text, message):
    (tmp_path / "bad.toml").write_text(text)
    result = run("generate", "bad.toml", "-o", "out.py", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_check_command_reports_per_parameter(tmp_path):
    (tmp_path / "net.toml").write_text(GOOD)
    result = run("check", str(tmp_path / "net.toml"))
    assert result.returncode == 0, result.stderr
    for name in ("W1", "b1", "W2", "b2"):
        assert any(line.startswith(name) for line in result.stdout.splitlines())
    assert "PASS" in result.stdout


def test_examples_lists_the_bundled_specs():
    result = run("examples")
    assert result.returncode == 0
    assert result.stdout.startswith("actuarial")


def test_help_and_version():
    assert run("--help").returncode == 0
    assert "symbp" in run("--version").stdout
