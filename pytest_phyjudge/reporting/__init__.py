"""What a run leaves behind: scores.json, tables and contact sheets."""
