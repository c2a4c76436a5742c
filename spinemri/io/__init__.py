"""File input and output: the only place (with report/ and pipeline) that touches files."""
