"""Times assigning a roster of 1,000 students on every bundled worksheet, and building a few full sheets.

Run: python benchmarks/roster_variants.py [STUDENTS]. Prints one row a spec: seconds to assign every
student a variant with distinct numbers (numbers drawn, no exact arithmetic), and seconds a full
exact sheet takes (what `symbp worksheet --roster` spends per student on top).
"""

from __future__ import annotations

import sys
import time

from symbp.classroom.roster import Student, assign
from symbp.examples import bundled_spec_paths
from symbp.spec.schema import load_spec
from symbp.worksheet.exercises import build_worksheet
from symbp.worksheet.numbers import line_problems


def main(count: int) -> None:
    started = time.perf_counter()
    line_problems()
    print(f"line-fitting problems tabulated once per process: {time.perf_counter() - started:.2f} s")
    students = [Student(f"s{k:05}", "") for k in range(count)]
    print(f"{'spec':<20}{'assign ' + str(count):>14}{'per full sheet':>16}")
    total = 0.0
    for path in bundled_spec_paths():
        spec = load_spec(path)
        started = time.perf_counter()
        variants = assign(spec, students)
        assigned = time.perf_counter() - started
        total += assigned
        started = time.perf_counter()
        for variant in list(variants.values())[:3]:
            build_worksheet(spec, variant)
        print(f"{spec.name:<20}{assigned:>13.2f}s{(time.perf_counter() - started) / 3:>15.2f}s")
    print(f"{'all':<20}{total:>13.2f}s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
