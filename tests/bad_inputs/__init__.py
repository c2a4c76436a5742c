"""The bad-input corpus: every kind of odd file spinemri must refuse (or read correctly), generated from code."""
