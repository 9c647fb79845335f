"""Hostile command lines: nothing a user owns is overwritten, and every refusal is one line, fast, with no trace.

Every refused case runs the real command line in a subprocess and asserts: its exit status, exactly one
line on stderr naming the problem, no traceback, every file in the folder byte-for-byte unchanged (and
FIFOs, devices and links still what they were), no new file, and an end within 10 s (a hung FIFO read
fails the test instead of hanging it).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from symbp.cli.main import main
from symbp.errors import OutputError
from symbp.output import NPZ_MARKER, PNG_MARKER, FirstLineMarker, ModuleMarker, Output, claim_outputs
from symbp.render.code.numpy_module import MARKER as MODULE_MARKER_TEXT
from symbp.render.latex.document import MARKER as DOCUMENT_MARKER_TEXT
from symbp.render.latex.tex import PDF_MARKER

ROOT = Path(__file__).resolve().parent.parent
HANG_GUARD = 10  # seconds: every hostile case must finish, accepted or refused, within this
SPEC = {
    "name": "tiny",
    "inputs": 2,
    "layers": [{"units": 2, "activation": "tanh"}, {"units": 1, "activation": "sigmoid"}],
    "loss": {"name": "binary_cross_entropy"},
    "training": {"epochs": 3, "learning_rate": 0.5},
}
DATA = "0,0,0\n0,1,1\n1,0,1\n1,1,0\n"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _environment(folder: Path) -> dict[str, str]:
    return {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(folder),
            "MPLCONFIGDIR": str(folder.parent / "mpl"), "MPLBACKEND": "Agg"}


def symbp(folder: Path, *args: str, timeout: float = HANG_GUARD) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "symbp", *args], cwd=folder, capture_output=True, text=True,
                          env=_environment(folder), timeout=timeout, stdin=subprocess.DEVNULL)


def snapshot(folder: Path) -> dict[str, object]:
    """Every entry under ``folder``: regular files by content, anything else by kind, links by target."""
    seen: dict[str, object] = {}
    for parent, folders, files in os.walk(folder):
        for name in folders + files:
            path = Path(parent) / name
            status = os.lstat(path)
            key = str(path.relative_to(folder))
            if stat.S_ISREG(status.st_mode):
                seen[key] = path.read_bytes()
            elif stat.S_ISLNK(status.st_mode):
                seen[key] = ("link", os.readlink(path))
            else:
                seen[key] = (stat.S_IFMT(status.st_mode), status.st_rdev, stat.S_IMODE(status.st_mode))
    return seen


def refused(folder: Path, *args: str, says: str, status: int = 2) -> str:
    """Runs a command that must be refused; returns its one line of stderr."""
    before = snapshot(folder)
    started = time.monotonic()
    result = symbp(folder, *args)
    assert time.monotonic() - started < HANG_GUARD
    assert result.returncode == status, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert lines[0].startswith("symbp: error: "), lines[0]
    assert says in lines[0], lines[0]
    assert snapshot(folder) == before
    return lines[0]


@pytest.fixture
def project(tmp_path) -> Path:
    """A user's folder: a spec, its data, a photo, a PDF and notes that are theirs, not symbp's."""
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "spec.json").write_text(json.dumps(SPEC))
    (folder / "d.csv").write_text(DATA)
    (folder / "photo.png").write_bytes(PNG_SIGNATURE + b"\0\0\0\x0dIHDR" + bytes(17) + b"someone's holiday")
    (folder / "paper.pdf").write_bytes(b"%PDF-1.4\n% someone's paper\n%%EOF\n")
    (folder / "notes.py").write_text('"""My notes."""\nprint("mine")\n')
    return folder


def make_fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


# --- Rule 1: an output that is one of the command's own inputs ------------------------------------------

@pytest.mark.parametrize("force", [[], ["--force"]])
def test_train_refuses_to_write_over_its_spec(project, force):
    refused(project, "train", "spec.json", "--data", "d.csv", "-o", "spec.json", *force,
            says="spec.json: is one of this command's inputs")


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_train_refuses_to_write_over_its_data(project, force):
    refused(project, "train", "spec.json", "--data", "d.csv", "-o", "d.csv", *force,
            says="is one of this command's inputs")


def test_an_input_reached_by_another_path_is_still_an_input(project):
    (project / "sub").mkdir()
    os.link(project / "d.csv", project / "sub" / "hard.csv")
    os.symlink(project / "spec.json", project / "sub" / "spec_link.json")
    refused(project, "train", "spec.json", "--data", "d.csv", "-o", "sub/../spec.json", "--force",
            says="is one of this command's inputs")
    refused(project, "train", "spec.json", "--data", "d.csv", "-o", "sub/hard.csv", "--force",
            says="is one of this command's inputs")
    refused(project, "train", "sub/spec_link.json", "--data", "d.csv", "-o", str(project / "spec.json"), "--force",
            says="is one of this command's inputs")


def test_generate_and_derive_refuse_to_write_over_their_spec(project):
    refused(project, "generate", "spec.json", "-o", "spec.json", "--force", says="is one of this command's inputs")
    os.link(project / "spec.json", project / "same.tex")
    refused(project, "derive", "spec.json", "-o", "same.tex", "--force", says="is one of this command's inputs")


# --- Rule 1: files symbp did not write ---------------------------------------------------------------------

def test_train_refuses_to_replace_a_photo(project):
    refused(project, "train", "spec.json", "--data", "d.csv", "--plot", "photo.png",
            says="photo.png: exists and was not written by symbp")
    refused(project, "train", "spec.json", "--data", "d.csv", "-o", "photo.png", says="not written by symbp")


def test_generate_refuses_a_module_that_only_mentions_the_marker_further_down(project):
    (project / "notes.py").write_text('"""My notes."""\nx = 1\n' + MODULE_MARKER_TEXT + " spec=tiny\n")
    refused(project, "generate", "spec.json", "-o", "notes.py", says="notes.py: exists and was not written by symbp")
    # The marker inside the docstring is not the marker's place either.
    (project / "notes.py").write_text(f'"""My notes.\n{MODULE_MARKER_TEXT} spec=tiny\n"""\nx = 1\n')
    refused(project, "generate", "spec.json", "-o", "notes.py", says="not written by symbp")


def test_derive_refuses_a_document_whose_marker_is_not_on_its_first_line(project):
    (project / "thesis.tex").write_text("\\documentclass{article}\n" + DOCUMENT_MARKER_TEXT + "\n")
    refused(project, "derive", "spec.json", "-o", "thesis.tex", says="thesis.tex: exists and was not written")


def test_a_zip_or_picture_that_merely_contains_the_marker_is_not_symbps(project):
    np.savez(project / "mine.npz", W=np.frombuffer(NPZ_MARKER.comment * 4, dtype=np.uint8))
    with zipfile.ZipFile(project / "mine.npz", "a") as archive:
        archive.writestr("__symbp__", NPZ_MARKER.comment)
    refused(project, "train", "spec.json", "--data", "d.csv", "-o", "mine.npz", says="not written by symbp")
    text = b"Software\0symbp"
    (project / "late.png").write_bytes((project / "photo.png").read_bytes() + text)
    refused(project, "train", "spec.json", "--data", "d.csv", "--plot", "late.png", says="not written by symbp")


def test_derive_pdf_next_to_a_foreign_pdf_writes_nothing(project):
    (project / "paper.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Creator (symbp 0.1.0) >> endobj\n%%EOF\n")
    refused(project, "derive", "spec.json", "-o", "paper.tex", "--pdf", says="paper.pdf: exists and was not written")
    assert not (project / "paper.tex").exists()


def test_generate_all_examples_writes_nothing_when_one_file_is_foreign(project):
    folder = project / "out"
    folder.mkdir()
    (folder / "xor.py").write_text("# my own xor\n")
    refused(project, "generate", "--all-examples", "-o", "out", says="xor.py: exists and was not written")


def test_worksheet_refuses_a_foreign_file(project):
    (project / "sheet.tex").write_text("my sheet\n")
    refused(project, "worksheet", "spec.json", "-o", "sheet.tex", says="sheet.tex: exists and was not written")


# --- Rule 1: anything that is not a regular file ----------------------------------------------------------

@pytest.mark.parametrize("command", [
    ["train", "spec.json", "--data", "d.csv", "-o"],
    ["train", "spec.json", "--data", "d.csv", "--plot"],
    ["generate", "spec.json", "-o"],
    ["derive", "spec.json", "-o"],
])
@pytest.mark.parametrize("force", [[], ["--force"]])
def test_a_fifo_as_output_is_refused_without_blocking(project, command, force):
    name = "pipe.tex" if command[0] == "derive" else "pipe"
    make_fifo(project / name)
    refused(project, *command, name, *force, says="is a FIFO")


def test_a_device_as_output_is_refused(project):
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    try:
        os.mknod(project / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except OSError:
        pytest.skip("this system does not allow making device nodes here")
    refused(project, "train", "spec.json", "--data", "d.csv", "-o", "null", "--force", says="null: is a device")


def test_a_directory_or_a_symbolic_link_as_output_is_refused(project):
    (project / "folder.py").mkdir()
    refused(project, "generate", "spec.json", "-o", "folder.py", "--force", says="is a directory")
    os.symlink("notes.py", project / "link.py")
    refused(project, "generate", "spec.json", "-o", "link.py", "--force", says="link.py: is a symbolic link")
    os.symlink("nowhere.py", project / "dangling.py")
    refused(project, "generate", "spec.json", "-o", "dangling.py", says="is a symbolic link")


def test_the_same_file_twice_is_refused(project):
    refused(project, "train", "spec.json", "--data", "d.csv", "--plot", "a.png", "--draw", "./a.png",
            says="is given as two outputs")
    (project / "pictures").mkdir()
    os.symlink("pictures", project / "same")
    refused(project, "train", "spec.json", "--data", "d.csv", "--plot", "pictures/a.png", "--draw", "same/a.png",
            says="is given as two outputs")


# --- Rule 1: an output that cannot be written is found before any work ------------------------------------

@pytest.mark.parametrize("command", [
    ["train", "spec.json", "--data", "d.csv", "-o"],
    ["generate", "spec.json", "-o"],
    ["derive", "spec.json", "--pdf", "-o"],
])
def test_an_output_under_a_file_is_refused_before_training(project, command):
    target = "d.csv/out.tex" if command[0] == "derive" else "d.csv/out.py"
    refused(project, *command, target, says="d.csv: is not a directory")


def test_an_output_under_a_fifo_or_a_missing_folder_is_refused(project):
    make_fifo(project / "pipe")
    refused(project, "generate", "spec.json", "-o", "pipe/out.py", says="pipe: is not a directory")
    refused(project, "train", "spec.json", "--data", "d.csv", "--plot", "no/such/loss.png",
            says="no/such: directory does not exist")


def test_an_output_in_a_read_only_folder_is_refused(project):
    locked = project / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("this user can write into read-only folders (root); the permission check cannot be seen")
        refused(project, "train", "spec.json", "--data", "d.csv", "-o", "locked/p.npz",
                says="locked: directory is not writable")
    finally:
        locked.chmod(0o755)


def test_an_unwritable_folder_is_named_even_where_permissions_cannot_be_set(tmp_path, monkeypatch):
    """As root every folder is writable, so the refusal is shown with the permission check answering no."""
    import symbp.output

    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(symbp.output.os, "access",
                        lambda path, mode: False if Path(path) == locked else real_access(path, mode))
    with pytest.raises(OutputError, match=r"locked: directory is not writable; choose another path for .*p\.npz"):
        claim_outputs([Output(locked / "p.npz", NPZ_MARKER)])
    assert list(locked.iterdir()) == []


# --- Rule 1: what symbp did write is replaced, with the marker put back --------------------------------------

def test_symbps_own_outputs_are_replaced_and_carry_their_markers(project):
    pytest.importorskip("matplotlib")
    for _ in range(2):
        result = symbp(project, "train", "spec.json", "--data", "d.csv", "-o", "p.npz", "--plot", "loss.png",
                       "--quiet", timeout=120)
        assert result.returncode == 0, result.stderr
        result = symbp(project, "generate", "spec.json", "-o", "tiny.py", timeout=120)
        assert result.returncode == 0, result.stderr
    assert NPZ_MARKER.is_on(project / "p.npz")
    assert PNG_MARKER.is_on(project / "loss.png")
    assert ModuleMarker(MODULE_MARKER_TEXT).is_on(project / "tiny.py")
    with np.load(project / "p.npz") as stored:
        assert {"W1", "b1", "W2", "b2"} <= set(stored.files)
    # --force replaces a foreign regular file (but never an input, a FIFO or a link, tested above).
    result = symbp(project, "train", "spec.json", "--data", "d.csv", "--plot", "photo.png", "--force", "--quiet",
                   timeout=120)
    assert result.returncode == 0, result.stderr
    assert PNG_MARKER.is_on(project / "photo.png")


def test_marker_readers_recognise_only_the_marker_at_its_place(tmp_path):
    tex = FirstLineMarker(DOCUMENT_MARKER_TEXT)
    (tmp_path / "a.tex").write_text(DOCUMENT_MARKER_TEXT + " kind=derivation\n\\documentclass{article}\n")
    (tmp_path / "b.tex").write_text(DOCUMENT_MARKER_TEXT + "-not-quite\n")
    assert tex.is_on(tmp_path / "a.tex") and not tex.is_on(tmp_path / "b.tex")
    module = ModuleMarker(MODULE_MARKER_TEXT)
    (tmp_path / "m.py").write_text(f'"""Doc.\n\nMore.\n"""\n{MODULE_MARKER_TEXT} spec=x\n')
    (tmp_path / "n.py").write_text(f'"""Doc."""\n\n{MODULE_MARKER_TEXT} spec=x\n')
    assert module.is_on(tmp_path / "m.py") and not module.is_on(tmp_path / "n.py")
    # A large foreign file is judged from its first bytes only.
    (tmp_path / "big.py").write_bytes(b"x" * 50_000_000)
    assert not module.is_on(tmp_path / "big.py")


def test_pdf_marker_is_read_from_the_information_dictionary(tmp_path):
    info = b"<< /Producer (x) /Creator (symbp 0.1.0) >>"
    body = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\n2 0 obj\n" + info + b"\nendobj\n"
    first = body.index(b"1 0 obj")
    second = body.index(b"2 0 obj")
    xref = len(body)
    table = b"xref\n0 3\n0000000000 65535 f \n%010d 00000 n \n%010d 00000 n \n" % (first, second)
    trailer = b"trailer\n<< /Size 3 /Root 1 0 R /Info 2 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref
    (tmp_path / "ours.pdf").write_bytes(body + table + trailer)
    assert PDF_MARKER.is_on(tmp_path / "ours.pdf")
    # The same words in a page, with an information dictionary naming someone else, are not symbp's.
    foreign = body.replace(b"/Creator (symbp 0.1.0)", b"/Creator (Word!!!!)") + table + trailer
    (tmp_path / "theirs.pdf").write_bytes(foreign + b"% /Creator (symbp 0.1.0)\n")
    assert not PDF_MARKER.is_on(tmp_path / "theirs.pdf")


def test_pdf_marker_is_read_from_pdftex_output_with_object_streams(tmp_path):
    from symbp.render.latex.tex import compile_pdf, tex_available

    if not tex_available():
        pytest.skip("pdflatex is not installed")
    body = "\\begin{document}\nx\n\\end{document}\n"
    for creator, ours in (("\\pdfinfo{/Creator (symbp 0.1.0)}", True), ("", False)):
        pdf = compile_pdf("\\documentclass{article}\n" + creator + "\n" + body, "info")
        # pdfTeX puts the information dictionary in a compressed object stream: found via the xref stream.
        assert b"/ObjStm" in pdf
        (tmp_path / "info.pdf").write_bytes(pdf)
        assert PDF_MARKER.is_on(tmp_path / "info.pdf") is ours


def test_claim_outputs_refuses_before_any_output_is_touched(tmp_path):
    (tmp_path / "ok.tex").write_text(DOCUMENT_MARKER_TEXT + "\n")
    (tmp_path / "foreign.pdf").write_bytes(b"%PDF-1.4\n")
    with pytest.raises(Exception, match="foreign.pdf: exists and was not written by symbp"):
        claim_outputs([Output(tmp_path / "ok.tex", FirstLineMarker(DOCUMENT_MARKER_TEXT)),
                       Output(tmp_path / "foreign.pdf", PDF_MARKER)])


# --- Rule 2 at the command line: a diverged run writes nothing --------------------------------------------

def test_a_diverged_run_exits_1_and_writes_nothing(tmp_path):
    refused(tmp_path, "train", "actuarial", "--learning-rate", "5", "--epochs", "1", says="training diverged",
            status=1)


# --- Rule 3: command-line numbers -------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "says"), [
    (["check", "tiny_spec.json", "--seed", "-1"], "--seed: must be at least 0"),
    (["check", "tiny_spec.json", "--seed", str(2**32)], "--seed: must be at most 4294967295"),
    (["check", "tiny_spec.json", "--samples", "0"], "--samples: must be from 1"),
    (["check", "tiny_spec.json", "--samples", "-3"], "--samples: must be from 1"),
    (["check", "tiny_spec.json", "--samples", "100000000"], "--samples: must be from 1"),
    (["check", "tiny_spec.json", "--samples", "many"], "--samples: invalid int value"),
    (["train", "tiny_spec.json", "--epochs", "1" + "0" * 30], "--epochs: must be at most 100000000"),
    (["train", "tiny_spec.json", "--epochs", "1e30"], "--epochs: invalid int value"),
    (["train", "tiny_spec.json", "--batch-size", "0"], "--batch-size: must be at least 1"),
    (["train", "tiny_spec.json", "--batch-size", str(10**12)], "--batch-size: must be at most"),
    (["train", "tiny_spec.json", "--learning-rate", "inf"], "--learning-rate: must be a finite number"),
    (["train", "tiny_spec.json", "--learning-rate", "-1"], "--learning-rate: must be greater than 0"),
    (["train", "tiny_spec.json", "--seed", "-5"], "--seed: must be at least 0"),
    (["worksheet", "tiny_spec.json", "--variant", "-1"], "--variant: must be 0 or more"),
    (["diagnose", "tiny_spec.json", "--seed", "-1"], "--seed: must be at least 0"),
    (["diagnose", "tiny_spec.json", "--epochs", str(10**9)], "--epochs: must be at most 100000000"),
    (["train", "tiny_spec.json", "--no-such-option"], "unrecognized arguments"),
    (["no-such-command"], "invalid choice"),
])
def test_command_line_numbers_have_the_spec_ranges(tmp_path, args, says):
    (tmp_path / "tiny_spec.json").write_text(json.dumps(SPEC))
    refused(tmp_path, *args, says=says)


# --- Rule 3: Ctrl-C and faults -----------------------------------------------------------------------------

@pytest.mark.parametrize("delay", [0.3, 0.8, 2.0])
def test_ctrl_c_at_any_moment_is_one_line_and_exit_130(tmp_path, delay):
    """Early delays land while NumPy and SymPy are still being imported; later ones while training."""
    (tmp_path / "tiny_spec.json").write_text(json.dumps({**SPEC, "training": {"epochs": 100_000_000}}))
    (tmp_path / "d.csv").write_text(DATA)
    before = snapshot(tmp_path)
    process = subprocess.Popen([sys.executable, "-m", "symbp", "train", "tiny_spec.json", "--data", "d.csv"],
                               cwd=tmp_path, env=_environment(tmp_path), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=HANG_GUARD)
    assert process.returncode == 130, err
    assert err.splitlines()[-1:] == ["symbp: interrupted"], err
    assert "Traceback" not in err
    assert snapshot(tmp_path) == before


SWALLOWING_RUN = """
import sys
import time

import symbp.cli.main
from symbp.cli.console import main


def swallowing(argv):
    # What Python does with a KeyboardInterrupt raised inside a finaliser: reports it and goes on.
    print("ready", flush=True)
    while True:
        try:
            time.sleep(0.05)
        except KeyboardInterrupt:
            pass


symbp.cli.main.main = swallowing
sys.exit(main([]))
"""


def test_a_ctrl_c_that_is_dropped_on_its_way_still_ends_the_run_with_130(tmp_path):
    process = subprocess.Popen([sys.executable, "-c", SWALLOWING_RUN], cwd=tmp_path, env=_environment(tmp_path),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    assert process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=HANG_GUARD)
    assert process.returncode == 130, err
    assert err.splitlines()[-1:] == ["symbp: interrupted"], err


FAULTING_RUN = """
import sys
import time

import symbp.cli.main
from symbp.cli.console import main


def importing(argv):
    # What a library's import does with a KeyboardInterrupt that lands inside it: re-raises it as its own error.
    try:
        print("ready", flush=True)
        time.sleep(30)
    except KeyboardInterrupt as interrupt:
        {how}


symbp.cli.main.main = importing
sys.exit(main([]))
"""


@pytest.mark.parametrize("how", ["raise ImportError('half imported') from interrupt",
                                 "raise ImportError('half imported') from None",
                                 "return 70"])
def test_a_ctrl_c_that_comes_out_as_another_error_still_ends_the_run_with_130(tmp_path, how):
    process = subprocess.Popen([sys.executable, "-c", FAULTING_RUN.format(how=how)], cwd=tmp_path,
                               env=_environment(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, text=True)
    assert process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=HANG_GUARD)
    assert process.returncode == 130, err
    assert err.splitlines()[-1:] == ["symbp: interrupted"], err
    assert "Traceback" not in err


def test_a_fault_raised_from_a_ctrl_c_is_reported_as_the_interrupt(capsys, monkeypatch):
    import symbp.cli.main

    def interrupted_import(args):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as interrupt:
            raise ImportError("numpy is half imported") from interrupt

    monkeypatch.setattr(symbp.cli.main, "_examples", interrupted_import)
    assert main(["examples"]) == 130
    assert capsys.readouterr().err.splitlines() == ["symbp: interrupted"]


def test_an_unexpected_fault_is_one_line_exit_70_and_the_traceback_on_request(tmp_path, monkeypatch, capsys):
    import symbp.cli.main

    def broken(args):
        raise RuntimeError("a bug\nover two lines")

    monkeypatch.setattr(symbp.cli.main, "_examples", broken)
    assert main(["examples"]) == 70
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "symbp: internal error: RuntimeError: a bug over two lines; run again with SYMBP_DEBUG=1 to see the "
        "traceback, and please report it"
    ]
    monkeypatch.setenv("SYMBP_DEBUG", "1")
    with pytest.raises(RuntimeError):
        main(["examples"])


def test_a_reader_that_goes_away_ends_symbp_quietly(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "symbp", "examples"], cwd=tmp_path,
                               env=_environment(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL)
    process.stdout.close()  # like `symbp examples | head -0`, before symbp has printed anything
    _, err = process.communicate(timeout=HANG_GUARD)
    assert process.returncode == 141, err
    assert err == b""


def test_bad_input_stays_exit_2_under_the_last_resort_handler(tmp_path, capsys):
    assert main(["check", str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("symbp: error: ") and "internal error" not in err


# --- LaTeX hardening ----------------------------------------------------------------------------------------

def test_tex_cannot_read_files_outside_its_folder(tmp_path):
    from symbp.render.latex.tex import TexError, compile_pdf, tex_available

    if not tex_available():
        pytest.skip("pdflatex is not installed")
    secret = tmp_path / "secret.tex"
    secret.write_text("SECRET-CONTENT\n")
    for path in (secret, Path("/etc/hostname")):
        if not path.exists():
            continue
        document = "\\documentclass{article}\n\\begin{document}\n\\input{" + str(path) + "}\n\\end{document}\n"
        with pytest.raises(TexError, match="LaTeX failed: LaTeX Error: File"):
            compile_pdf(document, "reader")
    # The same document compiles when TeX may read anywhere: the refusal above is the restriction's doing.
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "reader.tex").write_text("\\documentclass{article}\n\\begin{document}\n\\input{" + str(secret)
                                       + "}\n\\end{document}\n")
    result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-no-shell-escape", "reader.tex"], cwd=folder,
                            capture_output=True, text=True, env={**os.environ, "openin_any": "a"}, timeout=120,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0 and (folder / "reader.pdf").exists()


def test_tex_runs_without_shell_escape(tmp_path):
    from symbp.render.latex.tex import TEX_FLAGS, compile_pdf, tex_available

    assert "-no-shell-escape" in TEX_FLAGS
    if not tex_available():
        pytest.skip("pdflatex is not installed")
    flag = tmp_path / "ran"
    compile_pdf("\\documentclass{article}\n\\begin{document}\n\\immediate\\write18{touch " + str(flag)
                + "}x\n\\end{document}\n", "shell")
    assert not flag.exists()
