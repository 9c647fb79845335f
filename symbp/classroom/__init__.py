"""Worksheets in the classroom: per-student variants, answer tables, platform exports and a grader."""
