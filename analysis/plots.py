"""Figures of a run (PNG, matplotlib without a screen)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def finish(fig, ax, path: Path, title: str, xlabel: str, ylabel: str, legend: bool = True) -> Path:
    """Label, grid, legend, save as PNG and close: the common end of every figure."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def line_per_window(series: pd.DataFrame, title: str, ylabel: str, path: Path) -> Path:
    """One line per column of a window-indexed frame."""
    fig, ax = plt.subplots(figsize=(8, 4))
    for column in series.columns:
        ax.plot(series.index, series[column], label=str(column))
    return finish(fig, ax, path, title, "trading window", ylabel,
                  legend=1 < len(series.columns) <= 12)


def heat_map(matrix: pd.DataFrame, title: str, unit: str, path: Path) -> Path:
    """Rows × windows colour map (e.g. bus·phase voltage per window)."""
    fig, ax = plt.subplots(figsize=(10, max(3.0, 0.18 * len(matrix.index) + 1.5)))
    image = ax.imshow(matrix.to_numpy(dtype=float), aspect="auto", cmap="coolwarm",
                      interpolation="nearest")
    ax.set_yticks(np.arange(len(matrix.index)), [str(i) for i in matrix.index], fontsize=6)
    ax.set_xlabel("trading window")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label=unit)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
