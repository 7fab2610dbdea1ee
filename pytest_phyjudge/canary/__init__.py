"""Judge canaries: a few (clip, caption, axis) judged on a setup the user trusts, recorded
with the replies and digit distributions (``model``), judged afresh later (``record``) and
compared by behaviour, not by label (``compare``)."""
