"""Federated learning at a site, on NVIDIA FLARE.

* :mod:`.features` — the design matrix from the site's OMOP database, with the node agent's cohort
  semantics (person-level rows stay in this process's memory);
* :mod:`.templates` — the model templates (logistic regression, a small MLP) in numpy, as one flat
  parameter vector so that FLARE's numpy FedAvg averages them;
* :mod:`.client` — the FLARE Client API script each site's FLARE client runs;
* :mod:`.controller` — the server-side FedAvg (FLARE's own, plus metrics, a minimum number of sites
  and a final validation round).

Only :mod:`.client` and :mod:`.controller` import ``nvflare``.
"""
