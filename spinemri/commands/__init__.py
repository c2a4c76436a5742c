"""Sub-command modules of the ``spinemri`` command line (see spinemri.cli)."""
