"""The bad-input corpus: every kind of odd input spinemri must refuse or read correctly, from code."""
