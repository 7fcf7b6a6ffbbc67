"""Demo nodes: one approved node per demo hospital, each with its own synthetic OMOP database.

``seed()`` (run by ``manage.py seed_demo``) registers and approves the nodes, points the hospital's
demo datasets at them, writes ``var/nodes/<org>.sqlite3`` (synthetic OMOP CDM, different seeds and
sizes), ``<org>.token`` (the node token), ``<org>.policy.toml`` and ``<org>.toml`` (agent config).
``processes(portal_url)`` gives ``make run`` the four ``optima-node run`` processes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from django.conf import settings
from django.db import transaction

from accounts.models import Organisation

from .models import Node, NodeDataset, NodeStatus

# org slug -> (synthetic seed, persons)
DEMO_SITES: dict[str, tuple[int, int]] = {
    "de-hospital": (1, 8000),
    "fr-hospital": (2, 5000),
    "nl-hospital": (3, 3500),
    "se-hospital": (4, 2000),
}
DEMO_POLL_SECONDS = 2.0


def node_name(slug: str) -> str:
    return f"{slug.split('-')[0]}-omop"


def nodes_dir() -> Path:
    path = Path(settings.VAR_DIR) / "nodes"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _paths(slug: str) -> dict[str, Path]:
    base = nodes_dir()
    return {
        "db": base / f"{slug}.sqlite3",
        "token": base / f"{slug}.token",
        "policy": base / f"{slug}.policy.toml",
        "config": base / f"{slug}.toml",
    }


def _synthesise(path: Path, seed: int, persons: int) -> None:
    if path.exists() and path.stat().st_size > 0:
        return
    from optima_node.db import connect
    from optima_node.synth import synthesise

    db = connect(f"sqlite:///{path}")
    try:
        synthesise(db, persons, seed, ["prostate", "breast", "lung"], replace=True)
    finally:
        db.close()


def _token_for(node: Node, token_path: Path) -> None:
    """Keep a working token across re-seeds; issue (and store) a new one otherwise."""
    if token_path.exists():
        existing = token_path.read_text(encoding="utf-8").strip()
        if Node.authenticate(existing) == node:
            return
    from . import services

    _, raw = services.node_enrol(actor="seed_demo", organisation=node.organisation, name=node.name)
    token_path.write_text(raw + "\n", encoding="utf-8")
    token_path.chmod(0o600)


def _write_config(slug: str, paths: dict[str, Path]) -> None:
    if not paths["policy"].exists():
        paths["policy"].write_text(
            "# This hospital's disclosure policy: edit it here, never in the portal.\n"
            "[policy]\nmin_cell_count = 5\nrequire_approval = false\n"
            "review_before_release = false\n"
            "# Counts and survival tables leave masked; the portal sees only pooled sums.\n"
            "secure_aggregation = true\n"
            "federated_learning = true\n"
            'allowed_model_templates = ["logistic_regression", "mlp"]\n',
            encoding="utf-8",
        )
    paths["config"].write_text(
        "[node]\n"
        f'portal_url = "{settings.PORTAL_BASE_URL}"\n'
        f'omop_database_url = "sqlite:///{paths["db"]}"\n'
        f'policy_file = "{paths["policy"]}"\n'
        # The node's state beside its database: release ledger, secure-aggregation identity
        # and the review directory of the release gate (``optima-node review --config …``).
        f'ledger_file = "{paths["db"].with_suffix(".ledger.sqlite3")}"\n'
        f'identity_key_file = "{paths["db"].with_suffix(".identity.pem")}"\n'
        f'review_dir = "{paths["db"].with_suffix(".review")}"\n',
        encoding="utf-8",
    )


def seed(stdout=None) -> list[Node]:
    from . import services

    nodes = []
    for slug, (synth_seed, persons) in DEMO_SITES.items():
        organisation = Organisation.objects.filter(slug=slug).first()
        if organisation is None:
            continue
        paths = _paths(slug)
        _synthesise(paths["db"], synth_seed, persons)
        name = node_name(slug)
        with transaction.atomic():
            # Earlier demo seeds called every node "omop-node": rename rather than duplicate.
            Node.objects.filter(organisation=organisation, name="omop-node").update(name=name)
            node = Node.objects.filter(organisation=organisation, name=name).first()
            if node is None or node.status != NodeStatus.APPROVED:
                node, raw = services.node_enrol(
                    actor="seed_demo", organisation=organisation, name=name
                )
                paths["token"].write_text(raw + "\n", encoding="utf-8")
                paths["token"].chmod(0o600)
            else:
                _token_for(node, paths["token"])
            node.refresh_from_db()
            if node.poll_interval_seconds != DEMO_POLL_SECONDS:
                node.poll_interval_seconds = DEMO_POLL_SECONDS
                node.save(update_fields=["poll_interval_seconds"])
            for dataset in _demo_datasets(organisation):
                NodeDataset.objects.get_or_create(node=node, dataset=dataset)
        _write_config(slug, paths)
        nodes.append(node)
    profiled = sum(_seed_profiles(node, _paths(node.organisation.slug)) for node in nodes)
    if stdout:
        stdout.write(
            f"Federation: {len(nodes)} demo nodes with synthetic OMOP databases; "
            f"{profiled} database profile(s) attached."
        )
    return nodes


def _seed_profiles(node: Node, paths: dict[str, Path]) -> int:
    """Each of the node's demo datasets without a profile gets one, through the same services a
    steward and an agent use: the steward's request, the agent's run and its disclosure gate
    (executed here, on the node's demo database), the portal's result checks, the steward's attach."""
    from catalogue.models import DatasetProfile
    from optima_node.agent import Agent
    from optima_node.db import connect
    from optima_node.policy import load_policy
    from optima_node.schemas import RunAssignment

    from . import services
    from .models import RunStatus

    datasets = [
        d
        for d in _demo_datasets(node.organisation)
        if not DatasetProfile.objects.filter(dataset=d).exists()
    ]
    steward = _steward(node.organisation)
    if not datasets or steward is None:
        return 0
    policy = load_policy(paths["policy"])
    agent = Agent(client=None, db=connect(f"sqlite:///{paths['db']}"), policy=policy)
    attached = 0
    try:
        # What the agent reports first when it starts: its capabilities and its policy.
        node = services.node_heartbeat(node=node, heartbeat=agent.build_heartbeat())
        for dataset in datasets:
            analysis = services.dataset_profile_request(steward=steward, dataset=dataset)
            for run in analysis.runs.filter(node=node, status=RunStatus.DISPATCHED):
                claimed = services.run_claim(node=node)
                if claimed is None or claimed.pk != run.pk:
                    return attached  # the node has other work queued: its agent will do it
                assignment = RunAssignment(
                    run_id=claimed.pk,
                    attempt=claimed.attempt,
                    analysis_id=analysis.pk,
                    type=analysis.type,
                    version=analysis.version,
                    params=analysis.params,
                    **services.run_recipient(claimed),
                )
                services.run_submit_result(
                    node=node, run=claimed, payload=agent.execute(assignment)
                )
            analysis = services.analysis_advance(analysis_id=analysis.pk)
            if analysis.status == "completed" and not analysis.partial:
                services.dataset_profile_attach_from_analysis(
                    steward=steward, analysis=analysis, dataset=dataset
                )
                attached += 1
    finally:
        agent.db.close()
    return attached


def _steward(organisation):
    from django.contrib.auth import get_user_model

    from accounts.models import Role

    return (
        get_user_model()
        .objects.filter(
            is_active=True,
            memberships__organisation=organisation,
            memberships__roles__name=Role.DATA_STEWARD,
        )
        .order_by("pk")
        .first()
    )


def _demo_datasets(organisation):
    from catalogue.selectors import datasets_of_publisher

    datasets = list(datasets_of_publisher(organisation=organisation))
    federated = [d for d in datasets if "federated_analytics" in (d.access_modes or [])]
    return federated or datasets


def processes(portal_url: str) -> list[tuple[str, list[str], dict]]:
    """One ``optima-node run`` per seeded demo node (``make run`` starts and stops them)."""
    found = []
    for slug in DEMO_SITES:
        paths = _paths(slug)
        if not (paths["config"].exists() and paths["token"].exists()):
            continue
        found.append(
            (
                f"node-{slug}",
                [sys.executable, "-m", "optima_node.cli", "run", "--config", str(paths["config"])],
                {"PORTAL_URL": portal_url, "NODE_TOKEN_FILE": str(paths["token"])},
            )
        )
    return found
