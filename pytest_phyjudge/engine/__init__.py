"""The judge's engine: axes, rubric and prompts, reply parsing, judgments, videos, adapters."""
