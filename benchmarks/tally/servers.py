from __future__ import annotations


def server_probes():
    return []
