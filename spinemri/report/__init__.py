"""Reports: figures, QC overlays, HTML, provenance (may write files)."""
