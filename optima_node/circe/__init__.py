"""ATLAS/Circe cohort definitions: the supported subset (model), its SQL (sql) and its run (build)."""
