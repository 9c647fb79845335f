"""symbp derive and symbp worksheet as a person runs them."""

import subprocess
import sys
from pathlib import Path

from symbp.cli.main import main
from symbp.render.latex.document import MARKER

ROOT = Path(__file__).resolve().parent.parent


def run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "symbp", *args], capture_output=True, text=True, cwd=cwd,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_derive_writes_a_marked_document(tmp_path):
    result = run("derive", "actuarial", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = tmp_path / "actuarial_derivation.tex"
    assert written.read_text().startswith(MARKER)
    assert result.stdout.strip() == f"wrote {written.name}"


def test_bad_notation_is_exit_2_with_a_suggestion(tmp_path):
    result = run("derive", "xor", "--notation", "fauset", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "symbp: error: unknown notation 'fauset'; did you mean 'fausett'?"
    assert list(tmp_path.iterdir()) == []
    result = run("worksheet", "xor", "--notation", "nielsen", cwd=tmp_path)
    assert result.returncode == 2
    assert "choose one of lab, article, lesson, slides, fausett" in result.stderr


def test_refuses_to_overwrite_a_file_symbp_did_not_write(tmp_path, capsys):
    mine = tmp_path / "notes.tex"
    mine.write_text("\\documentclass{article} % my notes\n")
    assert main(["derive", "xor", "-o", str(mine)]) == 2
    assert mine.read_text() == "\\documentclass{article} % my notes\n"
    assert "--force" in capsys.readouterr().err
    assert main(["worksheet", "xor", "-o", str(mine)]) == 2
    assert main(["derive", "xor", "-o", str(mine), "--force"]) == 0
    assert mine.read_text().startswith(MARKER)
    # Now it is symbp's, and is replaced without --force.
    assert main(["worksheet", "xor", "-o", str(mine)]) == 0


def test_output_must_be_a_tex_file(tmp_path, capsys):
    assert main(["derive", "xor", "-o", str(tmp_path / "notes.pdf")]) == 2
    assert "ending in .tex" in capsys.readouterr().err


def test_spec_errors_are_one_line(tmp_path):
    (tmp_path / "bad.toml").write_text('name = "n"\ninputs = 1\nnotation = "lab2"\n[[layers]]\nunits = 1\n'
                                       'activation = "linear"\n')
    result = run("derive", "bad.toml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "symbp: error: notation: unknown 'lab2'; did you mean 'lab'?"
