"""Every probe, by name: the parent lists them, the child process runs them."""

from __future__ import annotations

from tally.model import Probe
from tally.probes import all_api_probes

__all__ = ["all_api_probes", "all_probes", "new_probes"]


def new_probes() -> list[Probe]:
    """The surfaces built after the first tally: report folders and sheets, Markdown and
    terminal outputs, cache trust, duplicates and file shapes, judge servers, canaries, the
    rating mode, pipelines, and every reader and writer attacked afresh."""
    from tally.blackbox import blackbox_probes
    from tally.cache_trust import cache_probes
    from tally.canary import canary_probes
    from tally.deploy import deploy_probes
    from tally.duplicates import duplicate_probes
    from tally.markdown import markdown_probes
    from tally.outputs import output_probes
    from tally.pipelines import pipeline_probes
    from tally.rating import rating_probes
    from tally.readers import reader_probes
    from tally.servers import server_probes
    from tally.small_defects import small_defect_probes
    from tally.writers import writer_probes

    return [
        *output_probes(),
        *markdown_probes(),
        *cache_probes(),
        *duplicate_probes(),
        *server_probes(),
        *rating_probes(),
        *small_defect_probes(),
        *writer_probes(),
        *pipeline_probes(),
        *reader_probes(),
        *canary_probes(),
        *deploy_probes(),
        *blackbox_probes(),
    ]


def all_probes() -> list[Probe]:
    return [*all_api_probes(), *new_probes()]
