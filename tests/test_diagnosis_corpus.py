"""The diagnosis corpus: every sick run is named with its condition, and no healthy run is flagged."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import diagnosis_corpus as corpus  # noqa: E402


@pytest.fixture(scope="module")
def outcomes():
    return corpus.run_corpus()


def test_the_corpus_covers_every_condition_and_healthy_runs_of_several_kinds():
    conditions = [case.condition for case in corpus.CASES]
    assert set(conditions) == {corpus.HEALTHY, *corpus.CONDITIONS}
    assert conditions.count(corpus.HEALTHY) >= 4


def test_every_sick_run_is_named_with_its_condition(outcomes):
    missed = [(o.case.name, o.case.condition, o.found) for o in outcomes
              if o.case.condition != corpus.HEALTHY and o.case.condition not in o.found]
    assert not missed


def test_no_healthy_run_is_flagged_and_no_false_alarm_elsewhere(outcomes):
    flagged = [(o.case.name, o.found) for o in outcomes if o.case.condition == corpus.HEALTHY and o.found]
    assert not flagged
    assert not [(o.case.name, corpus.false_alarms(o)) for o in outcomes if corpus.false_alarms(o)]
    for condition, runs, named, alarms, precision, recall in corpus.scores(outcomes):
        assert (named, alarms, precision, recall) == (runs, 0, 1.0, 1.0), condition
