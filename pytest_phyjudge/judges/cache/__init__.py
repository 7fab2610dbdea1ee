"""The judgment cache: ``CachedJudge`` in front of any judge, the SQLite store, the judges'
records, what the cache trusts of what it reads, and the export/import of its content."""
