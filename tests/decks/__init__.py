"""Per-PDK DRC case tables read by tests/test_decks.py: one module per built-in PDK, each holding
``PDK_NAME``, ``CASES`` (rule name -> :class:`decks.common.Case`) and ``LEGAL_SILENT``: "deck" when
every rule must be silent at a case's legal value, "rule" when only the case's own rule must be."""
