"""Every probe, by name: the parent lists them, the child process runs them."""

from __future__ import annotations

from tally.model import Probe
from tally.probes import all_api_probes


def all_probes() -> list[Probe]:
    return all_api_probes()
