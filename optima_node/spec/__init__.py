"""Vendored OMOP CDM v5.4 specification files (see PROVENANCE.md)."""
