"""Regression testing: statistics, repeated samples, baselines and comparisons."""
