"""The remote judge (``RemoteJudge``): a client of OpenAI-compatible judge servers (vLLM or
``phyjudge serve``), with its HTTP calls, deadlines, replicas, and the served judge's
provenance. It needs no model on this machine."""
