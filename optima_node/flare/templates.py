"""Model templates in numpy, as one flat float vector (what FLARE's numpy FedAvg averages).

``logistic_regression``: θ = (intercept, w₁…w_d). ``mlp``: one tanh hidden layer of ``hidden_units``
then a logistic output; θ = (W₁ row-major d×h, b₁, w₂, b₂). Training is (mini-)batch gradient
descent on the mean log-loss plus ``l2``/2·‖w‖² (intercepts unpenalised).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HISTOGRAM_BINS = 20


def expit(z: np.ndarray) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -z))


@dataclass(frozen=True)
class Template:
    name: str
    n_features: int
    hidden_units: int = 8

    # --- shapes ----------------------------------------------------------------------------
    @property
    def size(self) -> int:
        d, h = self.n_features, self.hidden_units
        return 1 + d if self.name == "logistic_regression" else d * h + h + h + 1

    def init(self, seed: int = 0) -> np.ndarray:
        if self.name == "logistic_regression":
            return np.zeros(self.size)
        rng = np.random.default_rng(seed)
        d, h = self.n_features, self.hidden_units
        w1 = rng.normal(0.0, 1.0 / np.sqrt(max(d, 1)), size=d * h)
        w2 = rng.normal(0.0, 1.0 / np.sqrt(h), size=h)
        return np.concatenate([w1, np.zeros(h), w2, np.zeros(1)])

    def _unpack(self, theta: np.ndarray):
        d, h = self.n_features, self.hidden_units
        w1 = theta[: d * h].reshape(d, h)
        b1 = theta[d * h : d * h + h]
        w2 = theta[d * h + h : d * h + 2 * h]
        b2 = theta[-1]
        return w1, b1, w2, b2

    # --- model -----------------------------------------------------------------------------
    def logits(self, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta, dtype=float).ravel()
        if self.name == "logistic_regression":
            return theta[0] + x @ theta[1:]
        w1, b1, w2, b2 = self._unpack(theta)
        return np.tanh(x @ w1 + b1) @ w2 + b2

    def predict_proba(self, theta: np.ndarray, x: np.ndarray) -> np.ndarray:
        return expit(self.logits(theta, x))

    def loss(self, theta: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
        if len(y) == 0:
            return float("nan")
        z = self.logits(theta, x)
        return float(np.mean(np.logaddexp(0.0, z) - y * z))

    def gradient(self, theta: np.ndarray, x: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
        n = max(len(y), 1)
        if self.name == "logistic_regression":
            r = expit(theta[0] + x @ theta[1:]) - y
            grad = np.concatenate([[r.sum()], x.T @ r]) / n
            grad[1:] += l2 * theta[1:]
            return grad
        w1, b1, w2, b2 = self._unpack(theta)
        a = np.tanh(x @ w1 + b1)
        r = expit(a @ w2 + b2) - y
        g_w2 = a.T @ r / n + l2 * w2
        g_b2 = np.array([r.sum() / n])
        delta = np.outer(r, w2) * (1.0 - a * a)
        g_w1 = x.T @ delta / n + l2 * w1
        g_b1 = delta.sum(axis=0) / n
        return np.concatenate([g_w1.ravel(), g_b1, g_w2, g_b2])

    def train(
        self,
        theta: np.ndarray,
        x: np.ndarray,
        y: np.ndarray,
        *,
        epochs: int,
        learning_rate: float,
        batch_size: int = 0,
        l2: float = 0.0,
        seed: int = 0,
    ) -> np.ndarray:
        theta = np.asarray(theta, dtype=float).ravel().copy()
        n = len(y)
        if n == 0:
            return theta
        rng = np.random.default_rng(seed)
        batch = n if batch_size <= 0 else min(batch_size, n)
        for _ in range(epochs):
            order = rng.permutation(n) if batch < n else np.arange(n)
            for start in range(0, n, batch):
                idx = order[start : start + batch]
                theta -= learning_rate * self.gradient(theta, x[idx], y[idx], l2)
        return theta


def auc(y: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the ROC curve (ties count one half); None without both classes."""
    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    sorted_scores = np.asarray(score)[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts - 1) / 2.0 + 1
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def score_histograms(y: np.ndarray, prob: np.ndarray) -> tuple[list[int], list[int]]:
    """Counts of predicted probabilities in fixed bins, for events and non-events: aggregates
    from which the portal computes a pooled AUC without any person-level score leaving a site."""
    edges = np.linspace(0.0, 1.0, HISTOGRAM_BINS + 1)
    y = np.asarray(y).astype(bool)
    pos, _ = np.histogram(prob[y], bins=edges)
    neg, _ = np.histogram(prob[~y], bins=edges)
    return pos.astype(int).tolist(), neg.astype(int).tolist()


def auc_from_histograms(pos: list[int], neg: list[int]) -> float | None:
    """AUC from binned scores (ties within a bin count one half)."""
    pos_a, neg_a = np.asarray(pos, dtype=float), np.asarray(neg, dtype=float)
    n_pos, n_neg = pos_a.sum(), neg_a.sum()
    if n_pos == 0 or n_neg == 0:
        return None
    neg_below = np.concatenate([[0.0], np.cumsum(neg_a)[:-1]])
    return float(((pos_a * (neg_below + 0.5 * neg_a)).sum()) / (n_pos * n_neg))


def template_for(params) -> Template:
    """The template of a :class:`~optima_node.schemas.FederatedLearningParams`."""
    return Template(params.template, len(params.features), params.hidden_units)
