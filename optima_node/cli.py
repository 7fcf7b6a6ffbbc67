"""``optima-node``: run the agent (``central``: the platform's agents of every central copy),
check an OMOP database, synthesise data, show the policy.

Exit codes: 0 success, 1 check found required tables or fields missing, 2 bad input or
configuration, 3 node token rejected by the portal, 4 portal unreachable (``run --once``).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from optima_node import __version__
from optima_node.config import ConfigError, collect, load_config, secret_from_file
from optima_node.db import Database, DatabaseError, connect
from optima_node.ledger import LedgerError, ReleaseLedger
from optima_node.policy import PolicyError, load_policy

EXIT_OK, EXIT_CHECK_FAILED, EXIT_USAGE, EXIT_TOKEN_REJECTED, EXIT_UNREACHABLE = 0, 1, 2, 3, 4


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    # One line on stderr for bad input, like every other error of this tool.
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="optima-node", description="OPTIMA federated node agent")
    parser.add_argument("--version", action="version", version=f"optima-node {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="heartbeat, poll the portal and execute analyses")
    run.add_argument(
        "--once", action="store_true", help="one cycle (heartbeat, runs until none left), then exit"
    )
    run.add_argument("--config", help="TOML file with the settings (environment variables win)")

    sub.add_parser(
        "central",
        help="the platform's central node: one agent per served central copy (environment: "
        "PORTAL_URL, CENTRAL_NODE_TOKEN, CENTRAL_STATE_DIR, CENTRAL_OMOP_DATABASE_URL)",
    )

    check = sub.add_parser(
        "check", help="check an OMOP database against the CDM v5.4 specification"
    )
    check.add_argument(
        "--db",
        help="sqlite:///path or postgresql://... (default: OMOP_DATABASE_URL or its _FILE)",
    )
    check.add_argument("--schema", help="CDM schema (PostgreSQL; default: CDM_SCHEMA)")
    check.add_argument(
        "--profile",
        action="store_true",
        help="also print the database profile (JSON) as the disclosure gate releases it",
    )
    check.add_argument("--policy-file", help="policy TOML for --profile (default: POLICY_FILE)")

    synth = sub.add_parser("synth", help="write a synthetic OMOP CDM v5.4 database")
    target = synth.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", help="sqlite:///path or postgresql://...")
    target.add_argument(
        "--zip", help="write a zip of one CSV per table instead (an extract for a central copy)"
    )
    synth.add_argument("--schema", help="target schema (PostgreSQL; created if missing)")
    synth.add_argument("--persons", type=int, default=5000)
    synth.add_argument("--seed", type=int, default=1)
    synth.add_argument(
        "--cancers", default="prostate,breast,lung", help="comma-separated: prostate,breast,lung"
    )
    synth.add_argument(
        "--replace", action="store_true", help="drop and recreate existing synthetic tables"
    )

    policy = sub.add_parser("policy", help="site disclosure policy")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True)
    show = policy_sub.add_parser("show", help="print the effective policy")
    show.add_argument("--config", help="TOML config file naming policy_file")
    show.add_argument("--policy-file", help="policy TOML file (default: POLICY_FILE)")

    identity = sub.add_parser(
        "identity", help="the node's secure-aggregation identity key and its fingerprint"
    )
    identity.add_argument("--config", help="TOML config file (IDENTITY_KEY_FILE)")

    review = sub.add_parser(
        "review", help="review secure-aggregation contributions held at this node (release gate)"
    )
    review.add_argument("--config", help="TOML config file (REVIEW_DIR)")
    review_sub = review.add_subparsers(dest="review_command", required=True)
    review_sub.add_parser("list", help="held runs and their status")
    for name, text in (
        ("show", "print a held run's parameters and its unsuppressed contribution"),
        ("release", "let the agent mask and send the contribution"),
        ("decline", "refuse the contribution: the run is refused at the portal"),
    ):
        cmd = review_sub.add_parser(name, help=text)
        cmd.add_argument("run_id", type=int)
        if name == "decline":
            cmd.add_argument("--note", default="", help="why (kept at the node only)")
    return parser


def _cmd_run(args: argparse.Namespace) -> int:
    from optima_node.agent import Agent
    from optima_node.client import PortalClient, PortalUnavailable, TokenRejected
    from optima_node.review import ReviewStore
    from optima_node.secagg import load_or_create_identity

    config = load_config(args.config)
    policy = load_policy(config.policy_file)
    ledger = ReleaseLedger(config.ledger_file)
    identity = load_or_create_identity(Path(config.identity_key_file))
    db = connect(config.omop_database_url, config.cdm_schema)
    agent = Agent(
        PortalClient(config.portal_url, config.node_token),
        db,
        policy,
        poll_interval=config.poll_interval,
        reconnect=lambda: connect(config.omop_database_url, config.cdm_schema),
        ledger=ledger,
        identity=identity,
        reviews=ReviewStore(config.review_dir),
        image_digest=config.image_digest,
        policy_file=config.policy_file or None,
    )

    def _stop(signum: int, _frame: object) -> None:
        logging.getLogger("optima_node").info(
            "received %s; stopping after the current run", signal.Signals(signum).name
        )
        agent.stop.set()

    previous = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        if args.once:
            agent.cycle()
        else:
            agent.run_forever()
    except TokenRejected as exc:
        raise CliError(f"node token rejected by the portal: {exc}", EXIT_TOKEN_REJECTED) from exc
    except PortalUnavailable as exc:
        raise CliError(f"portal unreachable: {exc}", EXIT_UNREACHABLE) from exc
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        agent.db.close()  # the agent may have reopened it
        ledger.close()
    return EXIT_OK


def _cmd_central(args: argparse.Namespace) -> int:
    from optima_node.central import Supervisor, load_central_config
    from optima_node.client import TokenRejected

    config = load_central_config()
    config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    # One agent thread per dataset: the thread's name (dataset-<id>) tells whose line it is.
    for handler in logging.getLogger().handlers:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s]: %(message)s")
        )
    supervisor = Supervisor(config)

    def _stop(signum: int, _frame: object) -> None:
        logging.getLogger("optima_node").info(
            "received %s; stopping every dataset's agent", signal.Signals(signum).name
        )
        supervisor.stop.set()
        for served in list(supervisor.served.values()):
            served.agent.stop.set()

    previous = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        supervisor.run_forever()
    except TokenRejected as exc:
        raise CliError(f"{exc}; the central node must stop", EXIT_TOKEN_REJECTED) from exc
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    from optima_node.check import check_database

    url = args.db or os.environ.get("OMOP_DATABASE_URL") or secret_from_file("OMOP_DATABASE_URL")
    if not url:
        raise CliError("give --db or set OMOP_DATABASE_URL (or OMOP_DATABASE_URL_FILE)")
    db = connect(url, args.schema or os.environ.get("CDM_SCHEMA") or None)
    try:
        report = check_database(db)
        profile = _profile(db, args) if args.profile and report.ok else None
    finally:
        db.close()
    print("\n".join(report.lines()))
    if profile is not None:
        print(profile)
    return EXIT_OK if report.ok else EXIT_CHECK_FAILED


def _profile(db: Database, args: argparse.Namespace) -> str:
    """The profile the node would release to the portal (database_profile v1), as JSON."""
    import json

    from optima_node.disclosure import Released, gate
    from optima_node.profile import compute_profile
    from optima_node.schemas import AnalysisType, DatabaseProfileParams

    policy = load_policy(args.policy_file or os.environ.get("POLICY_FILE"))
    kind = AnalysisType.DATABASE_PROFILE.value
    decision = gate(kind, 1, compute_profile(db, DatabaseProfileParams(), policy), policy)
    if not isinstance(decision, Released):
        raise CliError(f"the profile was refused by the disclosure gate: {decision.reason_code}")
    return json.dumps(decision.payload(), indent=2)


def _cmd_synth(args: argparse.Namespace) -> int:
    from optima_node.synth import SynthError, csv_zip, generate, synthesise

    cancers = [c.strip() for c in args.cancers.split(",") if c.strip()]
    if args.zip:
        try:
            tables = generate(args.persons, args.seed, cancers)
        except SynthError as exc:
            raise CliError(str(exc)) from exc
        Path(args.zip).write_bytes(csv_zip(tables))
        print(f"wrote {len(tables)} tables ({len(tables['person'][1])} persons) to {args.zip}")
        return EXIT_OK
    db = connect(args.out, args.schema)
    started = time.monotonic()
    try:
        counts = synthesise(db, args.persons, args.seed, cancers, replace=args.replace)
    except SynthError as exc:
        raise CliError(str(exc)) from exc
    finally:
        db.close()
    summary = ", ".join(f"{table} {n}" for table, n in counts.items())
    print(f"wrote {summary} in {time.monotonic() - started:.1f}s")
    return EXIT_OK


def _cmd_policy_show(args: argparse.Namespace) -> int:
    path = args.policy_file
    if path is None:
        path = collect(args.config).get("policy_file")
    policy = load_policy(path)
    print(f"# source: {path or 'built-in defaults'}")
    print(policy.to_toml(), end="")
    return EXIT_OK


def _state_paths(config_file: str | None) -> tuple[str, str]:
    """(identity key file, review directory) as ``run`` would use them."""
    from optima_node.config import beside, default_ledger_file

    raw = collect(config_file)
    ledger = raw.get("ledger_file") or default_ledger_file(
        raw.get("omop_database_url", ""), raw.get("cdm_schema")
    )
    return (
        raw.get("identity_key_file") or beside(ledger, ".identity.pem"),
        raw.get("review_dir") or beside(ledger, ".review"),
    )


def _cmd_identity(args: argparse.Namespace) -> int:
    from optima_node.secagg import fingerprint, load_or_create_identity, public_identity

    path, _ = _state_paths(args.config)
    public = public_identity(load_or_create_identity(Path(path)))
    print(f"identity key file: {path}")
    print(f"public key: {public}")
    print(f"fingerprint: {fingerprint(public)}  (compare with the node page at the portal)")
    return EXIT_OK


def _cmd_review(args: argparse.Namespace) -> int:
    from optima_node.review import ReviewError, ReviewStore, describe, render

    _, directory = _state_paths(args.config)
    store = ReviewStore(directory)
    try:
        if args.review_command == "list":
            held = store.all()
            print("\n".join(describe(h) for h in held) if held else "no held runs")
        elif args.review_command == "show":
            print(render(store.get(args.run_id)))
        elif args.review_command == "release":
            store.decide(args.run_id, "released")
            print(f"run {args.run_id} released: the agent masks and sends it on its next cycle")
        else:
            store.decide(args.run_id, "declined", note=args.note)
            print(f"run {args.run_id} declined: the agent refuses it on its next cycle")
    except ReviewError as exc:
        raise CliError(str(exc)) from exc
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    commands = {
        "run": _cmd_run,
        "central": _cmd_central,
        "check": _cmd_check,
        "synth": _cmd_synth,
        "policy": _cmd_policy_show,
        "identity": _cmd_identity,
        "review": _cmd_review,
    }
    try:
        return commands[args.command](args)
    except CliError as exc:
        print(f"optima-node: {exc}", file=sys.stderr)
        return exc.code
    except (ConfigError, PolicyError, DatabaseError, LedgerError) as exc:
        print(f"optima-node: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:  # a last line of defence: one clear line, details only with -v
        if args.verbose or os.environ.get("OPTIMA_NODE_DEBUG"):
            raise
        print(
            f"optima-node: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            file=sys.stderr,
        )
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
