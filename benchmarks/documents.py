"""How long `symbp derive` and `symbp worksheet` take for networks up to 4 layers and 12 units wide.

    python benchmarks/documents.py [--repeat N] [--notation NAME ...] [--network TEXT ...]
                                   [--drawn N [--first-seed S]] [--derive-only] [--timeout S] [--cpu]
                                   [--save DIR | --compare DIR]

Each document (a derivation, or a worksheet with its answer key) is made in a fresh process, as the
command line makes it, so that no cache carries over from one to the next; the time is that of
`derivation_document` or `worksheet_document` alone, after the imports. Prints one row per network
(from benchmarks/document_networks.py) with its parameter count, the best of N times for each
notation's derivation (d) and worksheet (w), and their total. The target is under 5 s for each
document. A document that runs past --timeout shows as >S. --drawn N times N networks drawn at random
instead (seeds from --first-seed on; `document_networks.drawn_network`): up to 4 layers of up to 12
units, any activation, with and without biases, so that no fixed list decides what is measured.

--save DIR writes every document's LaTeX to DIR; --compare DIR checks each against the one saved
there and marks a document whose text differs with '!' (a speedup must not change a byte), and one
with nothing saved to compare with '?'.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

NOTATIONS = ("lab", "article", "lesson", "slides", "fausett")
KINDS = ("derivation", "worksheet")


def file_name(network: str, notation: str, kind: str) -> str:
    slug = "".join(char if char.isalnum() else "_" for char in network)
    return f"{slug}.{notation}.{kind}.tex"


def make_document(network: str, notation: str, kind: str) -> tuple[str, float, float]:
    """The document's text, and the wall-clock and processor seconds it took."""
    from document_networks import network_spec

    from symbp.render.latex.document import derivation_document
    from symbp.render.latex.worksheet_document import worksheet_document
    from symbp.spec.schema import load_spec

    spec = load_spec(network_spec(network))
    started, cpu = time.perf_counter(), time.process_time()
    if kind == "derivation":
        text = derivation_document(spec, notation)
    else:
        text = worksheet_document(spec, notation, 0, solutions=True)
    return text, time.perf_counter() - started, time.process_time() - cpu


def child(args) -> None:
    """Makes one document in this process and prints its times (and whether it matches) as JSON."""
    text, wall, cpu = make_document(args.child_network, args.child_notation, args.child_kind)
    name = file_name(args.child_network, args.child_notation, args.child_kind)
    same = None
    if args.save:
        Path(args.save, name).write_text(text, encoding="utf-8")
    if args.compare and Path(args.compare, name).exists():
        same = Path(args.compare, name).read_text(encoding="utf-8") == text
    print(json.dumps({"wall": wall, "cpu": cpu, "same": same}))


def timed_in_child(network: str, notation: str, kind: str, args) -> dict | None:
    """The child's report, or None when it ran past the timeout."""
    command = [sys.executable, __file__, "--child-network", network, "--child-notation", notation,
               "--child-kind", kind]
    if args.save:
        command += ["--save", args.save]
    if args.compare:
        command += ["--compare", args.compare]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout, check=False)
    except subprocess.TimeoutExpired:
        return None
    if done.returncode != 0:
        raise RuntimeError(f"{network}, {notation} {kind} failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


def measure(network: str, notation: str, kind: str, args) -> tuple[float | None, bool | None]:
    """The best of --repeat seconds (None past the timeout), and whether the text matched."""
    best, same = None, None
    for _ in range(args.repeat):
        report = timed_in_child(network, notation, kind, args)
        if report is None:
            return None, same
        seconds = report["cpu" if args.cpu else "wall"]
        best = seconds if best is None else min(best, seconds)
        same = report["same"] if same is None else same and report["same"]
    return best, same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs (default 1)")
    parser.add_argument("--notation", action="append", choices=NOTATIONS, help="only this notation (repeatable)")
    parser.add_argument("--network", action="append", metavar="TEXT",
                        help="only the networks whose name contains TEXT (repeatable)")
    parser.add_argument("--drawn", type=int, metavar="N", help="time N networks drawn at random instead")
    parser.add_argument("--first-seed", type=int, default=0, help="the first drawn network's seed (default 0)")
    parser.add_argument("--derive-only", action="store_true", help="time the derivations, not the worksheets")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a document counts as too slow")
    parser.add_argument("--cpu", action="store_true", help="report processor seconds instead of wall-clock seconds")
    parser.add_argument("--save", metavar="DIR", help="write every document's LaTeX into DIR")
    parser.add_argument("--compare", metavar="DIR", help="mark documents whose LaTeX differs from DIR's with '!'")
    for hidden in ("--child-network", "--child-notation", "--child-kind"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_network:
        child(args)
        return

    from document_networks import NETWORKS, drawn_name, network_spec

    from symbp.spec.schema import load_spec

    if args.save:
        Path(args.save).mkdir(parents=True, exist_ok=True)
    notations = args.notation or list(NOTATIONS)
    kinds = KINDS[:1] if args.derive_only else KINDS
    listed = [drawn_name(seed) for seed in range(args.first_seed, args.first_seed + args.drawn)] if args.drawn \
        else list(NETWORKS)
    networks = [name for name in listed if not args.network or any(text in name for text in args.network)]
    columns = [(notation, kind) for notation in notations for kind in kinds]
    header = f"{'network':<32} {'params':>6} " + " ".join(
        f"{notation[:7] + ' ' + kind[0]:>9}" for notation, kind in columns) + f" {'total':>7}"
    print(f"seconds ({'processor' if args.cpu else 'wall-clock'}), best of {args.repeat}; target < 5 per document")
    print(header)
    print("-" * len(header))
    mismatches = unchecked = 0
    for network in networks:
        cells, total, over = [], 0.0, False
        for notation, kind in columns:
            seconds, same = measure(network, notation, kind, args)
            mark = {False: "!", None: "?" if args.compare else " "}.get(same, " ")
            mismatches += same is False
            unchecked += same is None
            if seconds is None:
                over = True
                cells.append(f"{'>' + format(args.timeout, 'g'):>8}{mark}")
            else:
                total += seconds
                cells.append(f"{seconds:>8.2f}{mark}")
        total_text = (">" if over else "") + f"{total:.1f}"
        params = load_spec(network_spec(network)).parameter_count
        print(f"{network:<32} {params:>6} " + " ".join(cells) + f" {total_text:>7}", flush=True)
    if args.compare:
        print(f"{mismatches} document(s) differ from {args.compare}, {unchecked} not compared (none saved, or "
              "past the timeout)" if mismatches or unchecked else f"every document matches {args.compare}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
