"""Build the FLARE job folder of a ``federated_learning`` v1 analysis.

The job: on the server FLARE's numpy model persistor (initial vector from the template) and
:class:`optima_node.flare.controller.OptimaFedAvg`; at each chosen site FLARE's ScriptRunner with
:mod:`optima_node.flare.client` and the analysis parameters as JSON. Sites and server need the
``optima-node`` package installed (the node agent's), which is where both scripts live.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from optima_node.flare import client as client_module
from optima_node.flare.templates import template_for
from optima_node.schemas import FederatedLearningParams

from . import require_nvflare

CLIENT_SCRIPT = "optima_node/flare/client.py"


def job_name(analysis_id: int | str) -> str:
    return f"optima-fl-{analysis_id}"


def build_job(
    *,
    name: str,
    params: dict[str, Any] | FederatedLearningParams,
    sites: list[str],
    out_dir: str | Path,
    task_timeout: int = 3600,
) -> Path:
    """Export the job folder under ``out_dir``; returns its path."""
    require_nvflare()
    from nvflare.app_common.np.np_model_persistor import NPModelPersistor
    from nvflare.job_config.api import FedJob
    from nvflare.job_config.script_runner import FrameworkType, ScriptRunner

    from optima_node.flare.controller import OptimaFedAvg

    if not isinstance(params, FederatedLearningParams):
        params = FederatedLearningParams.model_validate(params)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise ValueError(f"bad job name {name!r}")
    if len(sites) < params.min_sites:
        raise ValueError(f"{len(sites)} sites chosen, the job needs at least {params.min_sites}")
    template = template_for(params)
    job = FedJob(name=name, min_clients=params.min_sites)
    job.to_server(NPModelPersistor(model=template.init(params.seed).tolist()), id="persistor")
    job.to_server(
        OptimaFedAvg(
            num_rounds=params.rounds,
            min_sites=params.min_sites,
            task_timeout=int(task_timeout),
            expected_sites=list(sites),
            persistor_id="persistor",
        )
    )
    # In-process mode splits one string on whitespace, so the JSON travels base64url-encoded.
    args = "--params " + client_module.encode_params(params.model_dump(mode="json"))
    for site in sites:
        job.to(
            ScriptRunner(
                script=client_module.__file__,
                script_args=args,
                framework=FrameworkType.NUMPY,
            ),
            site,
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    job.export_job(str(out))
    folder = out / name
    _portable_script_path(folder)
    return folder


def _portable_script_path(folder: Path) -> None:
    """FedJob records the script's absolute path on this host; the sites resolve it relative to
    the job's custom folder (which FedJob filled with the optima_node modules it imports)."""
    for config in folder.glob("app_*/config/config_fed_client.json"):
        data = json.loads(config.read_text(encoding="utf-8"))
        for executor in data.get("executors", []):
            args = executor.get("executor", {}).get("args", {})
            if args.get("task_script_path") == client_module.__file__:
                args["task_script_path"] = CLIENT_SCRIPT
        config.write_text(json.dumps(data, indent=2), encoding="utf-8")
