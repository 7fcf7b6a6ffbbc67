"""The centralised route: OMOP extracts shared to the platform, checked, loaded and served (issue 21)."""
