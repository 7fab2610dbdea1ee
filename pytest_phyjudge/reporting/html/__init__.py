"""The HTML report: one folder that plays each case's clip beside its verdicts, offline."""

from __future__ import annotations

from pytest_phyjudge.reporting.html.render import write_html_report

__all__ = ["write_html_report"]
