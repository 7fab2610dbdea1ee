"""The hostile inputs of ``benchmarks/hostile_tally.py`` and the runners that try them."""
