"""The ``phyjudge`` command."""
