"""Scoring restorers: the protocols (protocol.py), the restorers (restorers.py: baselines and
networks), running and recording (runner.py), reports (report.py) and comparison panels
(compare.py)."""
