"""matplotlib figures of results: Kaplan–Meier curves and a forest plot (the ``[plot]`` extra)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from .results import number_at_risk

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # the optional extra
        raise ImportError("Plots need matplotlib: pip install 'optima-client[plot]'") from exc
    return plt


def _ticks(upper: float, count: int = 6) -> list[float]:
    step = max(1, round(upper / (count - 1)))
    return [float(t) for t in range(0, int(upper) + step, step)]


def plot_kaplan_meier(frame: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Kaplan–Meier curves per stratum with their 95% confidence bands and, under the plot, the
    numbers at risk at each tick. ``frame`` is :func:`optima_client.results.kaplan_meier_frame`'s
    table (what ``handle.result()`` returns for a Kaplan–Meier analysis)."""
    plt = _pyplot()
    unit = int(frame.attrs.get("time_unit_days", 1))
    strata = list(dict.fromkeys(frame["stratum"]))
    horizon = float(frame["time"].max()) if len(frame) else 1.0
    ticks = _ticks(max(horizon, 1.0))
    fig, (ax, risk) = plt.subplots(
        2,
        1,
        figsize=(8, 5 + 0.3 * len(strata)),
        sharex=True,
        gridspec_kw={"height_ratios": [4, 0.6 + 0.3 * len(strata)]},
    )
    for colour, name in enumerate(strata):
        rows = frame[frame["stratum"] == name].sort_values("time")
        times = [0.0, *rows["time"].astype(float)]
        survival = [1.0, *rows["survival"]]
        low, high = [1.0, *rows["ci_low"]], [1.0, *rows["ci_high"]]
        line = ax.step(times, survival, where="post", label=str(name), color=f"C{colour}")
        ax.fill_between(times, low, high, step="post", alpha=0.2, color=line[0].get_color())
        counts = number_at_risk(rows, ticks)
        for t, n in zip(ticks, counts, strict=True):
            risk.text(t, colour, str(n), ha="center", va="center", color=f"C{colour}")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("Survival probability")
    ax.grid(alpha=0.3)
    if len(strata) > 1:
        ax.legend(title=frame.attrs.get("stratify_by", "stratum"))
    log_rank = frame.attrs.get("log_rank")
    if title or log_rank:
        parts = [title] if title else []
        if log_rank:
            parts.append(f"log-rank p = {log_rank['p_value']:.3g}")
        ax.set_title(" — ".join(parts))
    risk.set_yticks(range(len(strata)), [str(s) for s in strata])
    risk.set_ylim(len(strata) - 0.5, -0.5)
    risk.set_xticks(ticks)
    risk.set_xlabel(f"Time ({unit}-day units)")
    risk.set_title("Number at risk", fontsize="small", loc="left")
    risk.tick_params(left=False)
    for side in ("top", "right", "left"):
        risk.spines[side].set_visible(False)
    fig.tight_layout()
    return fig


def plot_forest(frame: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Odds ratios with their 95% intervals on a log scale, one line per covariate (the intercept
    left out). ``frame`` is the coefficient table of a logistic regression."""
    plt = _pyplot()
    import numpy as np

    terms = frame.drop(index="intercept", errors="ignore")
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.5 * max(len(terms), 1)))
    positions = list(range(len(terms)))[::-1]
    low, high = np.exp(terms["ci_low"]), np.exp(terms["ci_high"])
    ax.errorbar(
        terms["odds_ratio"],
        positions,
        xerr=[terms["odds_ratio"] - low, high - terms["odds_ratio"]],
        fmt="s",
        color="C0",
        capsize=3,
    )
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xscale("log")
    ax.set_yticks(positions, list(terms.index))
    ax.set_xlabel("Odds ratio (95% CI)")
    ax.set_title(title or f"Logistic regression (n = {frame.attrs.get('n')})")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


def plot_result(frame: pd.DataFrame, *, title: str | None = None) -> Figure:
    """The figure of a result table: Kaplan–Meier curves or a forest plot."""
    kind = frame.attrs.get("analysis_type")
    if kind == "kaplan_meier":
        return plot_kaplan_meier(frame, title=title)
    if kind == "logistic_regression":
        return plot_forest(frame, title=title)
    raise ValueError(f"No plot for a {kind or 'plain'} table; plot its columns with pandas.")
