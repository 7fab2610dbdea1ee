"""The tiny judge's reply-format training: what it starts from (``start``), the rows it is
trained on (``rows``), and the fit of its last layer (``fit``). Used by the builder only."""
