"""Judge backends: one small interface (``base.Judge``), several ways to fill it in."""
