"""The pytest integration: options, the run's state, items, assertions, the reporter."""
