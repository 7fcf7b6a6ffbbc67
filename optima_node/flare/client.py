"""FLARE Client API script: train a model template on this site's OMOP data, never sharing rows.

Run by FLARE's ScriptRunner in the site's client job process. Each ``train`` task brings the global
parameter vector; the site trains ``local_epochs`` on its training split and returns the new vector
with its training size (the FedAvg weight) and aggregate metrics only: training loss, validation
loss and AUC of the *received* global model, and binned validation score counts from which the
server computes a pooled AUC. ``validate`` evaluates the final global model the same way.

A site whose policy refuses (no federated learning, template not allowed) or that has too few
persons answers every task with an empty contribution and a reason; the server counts it out.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys

import numpy as np

from optima_node.flare.features import load_split
from optima_node.flare.site import SiteRefused, check_policy, site_config
from optima_node.flare.templates import auc, score_histograms, template_for
from optima_node.schemas import FederatedLearningParams

NUMPY_KEY = "numpy_key"


def encode_params(params: dict) -> str:
    """JSON, base64url-encoded: one shell-safe token whatever the parameters contain."""
    return base64.urlsafe_b64encode(json.dumps(params, separators=(",", ":")).encode()).decode()


def decode_params(token: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(token.encode()).decode())


def evaluate(template, theta, x, y) -> dict:
    prob = template.predict_proba(theta, x) if len(y) else np.zeros(0)
    pos, neg = score_histograms(y, prob)
    return {
        "val_loss": template.loss(theta, x, y),
        "val_auc": auc(y, prob),
        "val_hist_pos": pos,
        "val_hist_neg": neg,
        "n_val": len(y),
    }


def prepare(site: str, params: FederatedLearningParams):
    """(template, split) or SiteRefused."""
    config = site_config(site)
    check_policy(config.policy, params.template)
    db = config.connect()
    try:
        data = load_split(db, params)
    finally:
        db.connection.close()
    events = int(data.y_train.sum())
    min_cell = config.policy.min_cell_count
    if min(events, len(data.y_train) - events) < min_cell or len(data.y_val) < min_cell:
        raise SiteRefused("too few persons or events for training at this site")
    return template_for(params), data


def main(argv: list[str] | None = None) -> int:
    import nvflare.client as flare
    from nvflare.app_common.abstract.fl_model import FLModel

    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--params", required=True, help="FederatedLearningParams, see encode_params"
    )
    args = parser.parse_args(argv)
    params = FederatedLearningParams.model_validate(decode_params(args.params))

    flare.init()
    site = flare.get_site_name()
    refused: str | None = None
    try:
        template, data = prepare(site, params)
    except SiteRefused as exc:
        refused = str(exc)
    except Exception as exc:
        refused = f"feature extraction failed: {type(exc).__name__}"
    print(f"[optima] site {site}: {'refused: ' + refused if refused else 'ready'}", flush=True)

    while flare.is_running():
        received = flare.receive()
        if received is None:
            break
        if refused:
            flare.send(
                FLModel(
                    params={}, metrics={"refused": 1.0}, meta={"refused": refused, "site": site}
                )
            )
            continue
        theta = np.asarray(received.params[NUMPY_KEY], dtype=float).ravel()
        metrics = evaluate(template, theta, data.x_val, data.y_val)
        if flare.is_evaluate():
            flare.send(FLModel(metrics=metrics, meta={"site": site, "final": True}))
            continue
        round_no = int(received.current_round or 0)
        trained = template.train(
            theta,
            data.x_train,
            data.y_train,
            epochs=params.local_epochs,
            learning_rate=params.learning_rate,
            batch_size=params.batch_size,
            l2=params.l2,
            seed=params.seed + round_no,
        )
        metrics.update(
            train_loss=template.loss(trained, data.x_train, data.y_train),
            n_train=len(data.y_train),
        )
        flare.send(
            FLModel(
                params={NUMPY_KEY: trained},
                metrics=metrics,
                meta={"site": site, "NUM_STEPS_CURRENT_ROUND": len(data.y_train)},
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
