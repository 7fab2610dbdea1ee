"""YAML suites and PhyGround prompt sets, read into frozen Suite/Case values."""
