"""Drawing helpers shared by every figure (matplotlib without a screen).

Time axes show clock time or dates, never window indices; a series with gaps breaks at the gaps
(never a line across missing windows); one or a few points are drawn as markers, so a
single-window run never gives empty axes.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402

STYLES = [dict(linestyle="-", marker="o"), dict(linestyle="--", marker="s"),
          dict(linestyle=":", marker="^"), dict(linestyle="-.", marker="D"),
          dict(linestyle=(0, (5, 1)), marker="v"), dict(linestyle=(0, (1, 1)), marker="P")]


def new(rows: int = 1, height: float = 3.6, sharex: bool = True, width: float = 8.5):
    fig, axes = plt.subplots(rows, 1, figsize=(width, height * rows), sharex=sharex, squeeze=False)
    return fig, list(axes[:, 0])


def finish(fig, ax, title: str, xlabel: str, ylabel: str, legend: bool = True) -> None:
    """Label, grid and legend (only when there is something to tell apart)."""
    if xlabel:
        ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()
    if legend and 1 <= len(handles) <= 12:
        ax.legend(fontsize="small")


def save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def full_index(series: pd.Series, windows: int) -> pd.Series:
    """The series over every window 0..windows-1, NaN where it has no value (a gap)."""
    return series.reindex(range(windows))


DAILY_AFTER = pd.Timedelta(days=14)  # longer runs are drawn per day: per-window lines would be a block


def is_long(times: pd.DatetimeIndex) -> bool:
    return len(times) > 1 and times[-1] - times[0] > DAILY_AFTER


def time_series(ax, times: pd.DatetimeIndex, values, label: str | None = None, style: int = 0,
                step: bool = False, **kw) -> None:
    """A series against time: markers when it has few points, breaks at NaN gaps; over a long
    run the daily mean with the daily min–max as a band."""
    values = np.asarray(values, dtype=float)
    if is_long(times):
        daily = pd.Series(values, index=times).resample("D").agg(["min", "mean", "max"])
        colour = kw.pop("color", f"C{style}")
        ax.fill_between(daily.index, daily["min"], daily["max"], alpha=0.25, color=colour,
                        label=None if label is None else f"{label}: daily min–max")
        ax.plot(daily.index, daily["mean"], color=colour, linestyle=STYLES[style]["linestyle"],
                label=None if label is None else f"{label}: daily mean")
        return
    points = int(np.isfinite(values).sum())
    opts = dict(STYLES[style % len(STYLES)])
    if points > 40:
        opts.pop("marker")
    if step:
        ax.step(times, values, where="post", label=label, **{**opts, **kw})
    else:
        ax.plot(times, values, label=label, **{**opts, **kw})
    if points <= 3:  # a single-window study: say the number, a lone dot is easy to misread
        for t, v in zip(times, values, strict=True):
            if np.isfinite(v):
                ax.annotate(f"{v:.4g}", (t, v), textcoords="offset points", xytext=(6, 6),
                            fontsize=8)


def date_axis(ax, times: pd.DatetimeIndex) -> None:
    """Clock time within a day, dates over longer spans (matplotlib's concise formatter)."""
    locator = mdates.AutoDateLocator(minticks=3, maxticks=9)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    if len(times) == 1:  # one window: show an hour around it, not a zero-width axis
        t = times[0]
        ax.set_xlim(t - pd.Timedelta(minutes=30), t + pd.Timedelta(minutes=45))


def limit_lines(ax, low: float | None, high: float | None, unit: str) -> None:
    for value, name in ((low, "lower limit"), (high, "upper limit")):
        if value is not None:
            ax.axhline(value, color="crimson", linewidth=1.2, linestyle="--",
                       label=f"{name} {value:g} {unit}")


def diverging_norm(values: np.ndarray, low: float, high: float, centre: float = 1.0) -> TwoSlopeNorm:
    """Colour scale centred on `centre` that always reaches beyond both limits, so the limits
    sit at the same colour in every run and red/blue mean over/under them."""
    finite = values[np.isfinite(values)]
    vmin = min(low - 0.01, float(finite.min()) if finite.size else low)
    vmax = max(high + 0.01, float(finite.max()) if finite.size else high)
    return TwoSlopeNorm(vcenter=centre, vmin=min(vmin, centre - 1e-6), vmax=max(vmax, centre + 1e-6))
