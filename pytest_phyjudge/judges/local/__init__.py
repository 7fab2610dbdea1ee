"""The in-process judge (``LocalJudge``): planning and loading it, the video prefix and the
axes' rows run in one batch, one chat request (``completion``), and CPU memory. Importing
this package loads no model: torch and transformers are imported where a model is used."""
