"""The figures `lemcosim analyze` draws, each from an aggregate query of the logs it needs.

A figure function takes the opened run and the report options and yields `Figure`s (skipped when
the run did not log what it needs). Every figure reads right for 1 window, a day and a year:
time or date axes, limits drawn, gaps left open (tests/test_analysis_figures.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lemcosim.analysis import plots
from lemcosim.analysis.labels import MONEY_NOTE
from lemcosim.analysis.run import LAST_SOLVE, RunData

HEAT_MAP_MAX_ROWS = 60  # bus·phases: a bigger feeder gets the voltage band plot only
HEAT_MAP_MAX_COLUMNS = 400  # time bins: a long run shows the worst value of each bin


@dataclass
class Figure:
    stem: str
    caption: str
    fig: object


@dataclass
class Options:
    window: int | None = None  # the window of per-transaction and auction-curve figures
    extra: dict = field(default_factory=dict)


FigureMaker = Callable[[RunData, Options], Iterator[Figure]]


def _per_window(run: RunData, query: str, params: list | None = None) -> pd.DataFrame:
    return run.sql(query, params).set_index("window").sort_index()


def prosumer_net_injection(run: RunData, opts: Options) -> Iterator[Figure]:
    rows = _per_window(run, """SELECT "window", sum(value) AS net_kw, any_value(unit) AS unit
        FROM logs WHERE federate = 'prosumers' AND quantity = 'net_kw' AND entity = 'population'
        GROUP BY "window" """)
    if rows.empty:
        return
    times = run.time_of(range(run.windows))
    fig, (ax,) = plots.new()
    plots.time_series(ax, times, plots.full_index(rows["net_kw"], run.windows), "net injection")
    ax.axhline(0.0, color="grey", linewidth=0.8)
    plots.date_axis(ax, times)
    plots.finish(fig, ax, "Net injection of the prosumer population", "time",
                 "net injection, kW (> 0 into the grid)", legend=False)
    yield Figure("prosumers_net_kw", "Net injection of the whole prosumer population per window "
                 "(kW, positive = export to the grid).", fig)


def _voltages(run: RunData) -> pd.DataFrame:
    return run.sql(f"""SELECT "window", entity, value FROM ({LAST_SOLVE.format(grid='grid')})
                       WHERE quantity = 'v_pu'""")


def grid_voltage_band(run: RunData, opts: Options) -> Iterator[Figure]:
    if not run.has("grid", "v_pu"):
        return
    limits = run.grid_limits()
    lo, hi = limits["v_min_pu"], limits["v_max_pu"]
    if run.windows == 1:  # one window: the profile over the feeder's bus·phases
        v = _voltages(run).sort_values("value")
        fig, (ax,) = plots.new(height=4.2)
        colours = np.where((v["value"] < lo) | (v["value"] > hi), "crimson", "tab:blue")
        ax.scatter(range(len(v)), v["value"], c=colours, s=14, label="bus·phase voltage")
        if len(v) <= 60:
            ax.set_xticks(range(len(v)), v["entity"], rotation=90, fontsize=6)
        plots.limit_lines(ax, lo, hi, "pu")
        plots.finish(fig, ax, "Voltage of every bus·phase (sorted)",
                     "bus·phase" if len(v) <= 60 else f"{len(v)} bus·phases, sorted by voltage",
                     "voltage, pu")
        yield Figure("grid_voltage_band", "Voltage magnitude of every bus·phase in the solved "
                     "window, sorted, with the operating limits (red: outside).", fig)
        return
    band = _per_window(run, f"""SELECT "window", min(value) AS vmin,
            quantile_cont(value, 0.05) AS p05, median(value) AS p50,
            quantile_cont(value, 0.95) AS p95, max(value) AS vmax
        FROM ({LAST_SOLVE.format(grid='grid')}) WHERE quantity = 'v_pu' GROUP BY "window" """)
    band = band.reindex(range(run.windows))
    times = run.time_of(range(run.windows))
    per = "window"
    if plots.is_long(times):  # per day: extremes of the day, mean of the percentiles
        band = band.set_index(times).resample("D").agg(
            {"vmin": "min", "p05": "mean", "p50": "mean", "p95": "mean", "vmax": "max"})
        times, per = pd.DatetimeIndex(band.index), "day"
    fig, (ax,) = plots.new(height=4.2)
    ax.fill_between(times, band["vmin"], band["vmax"], alpha=0.2, color="tab:blue",
                    label="min–max over bus·phases", step="post")
    ax.fill_between(times, band["p05"], band["p95"], alpha=0.35, color="tab:blue",
                    label="5–95 % of bus·phases", step="post")
    if per == "day":
        ax.plot(times, band["p50"], color="navy", label="median (daily mean)")
    else:
        plots.time_series(ax, times, band["p50"], "median", step=True, color="navy")
    plots.limit_lines(ax, lo, hi, "pu")
    plots.date_axis(ax, times)
    plots.finish(fig, ax, "Voltage band over the feeder", "time", "voltage, pu")
    note = ("" if per == "window" else " Per day: the day's lowest and highest voltage, the "
            "daily mean of the 5 %, 95 % and median.")
    yield Figure("grid_voltage_band", "Spread of bus·phase voltages in each window's committed "
                 "state (min–max, 5–95 % and median) against the operating limits (dashed)."
                 + note, fig)


def grid_voltage_heat_map(run: RunData, opts: Options) -> Iterator[Figure]:
    if run.windows < 2 or not run.has("grid", "v_pu"):
        return
    entities = run.sql(f"""SELECT DISTINCT entity FROM ({LAST_SOLVE.format(grid='grid')})
                           WHERE quantity = 'v_pu' ORDER BY entity""")["entity"]
    if len(entities) > HEAT_MAP_MAX_ROWS:
        return  # unreadable: the band plot shows it
    bin_w = max(1, -(-run.windows // HEAT_MAP_MAX_COLUMNS))
    per_day = round(86400 / run.window_s)
    if bin_w > 1 and per_day >= 1:  # whole days per column: no aliasing of the daily cycle
        bin_w = per_day * -(-bin_w // per_day)
    cells = run.sql(f"""SELECT entity, "window" // {bin_w} AS bin,
            arg_max(value, abs(value - 1.0)) AS v
        FROM ({LAST_SOLVE.format(grid='grid')}) WHERE quantity = 'v_pu' GROUP BY ALL""")
    bins = -(-run.windows // bin_w)
    matrix = cells.pivot(index="entity", columns="bin", values="v").reindex(
        index=entities, columns=range(bins)).to_numpy(dtype=float)
    limits = run.grid_limits()
    lo, hi = limits["v_min_pu"], limits["v_max_pu"]
    norm = plots.diverging_norm(matrix, lo, hi)
    times = run.time_of([0, run.windows])
    t0, t1 = (plt.matplotlib.dates.date2num(t) for t in times)
    fig, (ax,) = plots.new(height=max(3.0, min(9.0, 0.14 * len(entities) + 1.6)), width=9.5)
    image = ax.imshow(matrix, aspect="auto", cmap="RdBu_r", norm=norm, interpolation="nearest",
                      extent=(t0, t1, len(entities) - 0.5, -0.5))
    ax.set_yticks(range(len(entities)), list(entities), fontsize=6 if len(entities) > 30 else 8)
    ax.xaxis_date()
    plots.date_axis(ax, times)
    bar = fig.colorbar(image, ax=ax, label="voltage, pu")
    bar.add_lines([lo, hi], ["black", "black"], [2.0, 2.0])
    bar.set_ticks([lo, 1.0, hi])  # inside the norm's range (a tick beyond it breaks the bar)
    note = "" if bin_w == 1 else f" (each column: the value farthest from 1 pu in {bin_w} windows)"
    ax.set_title("Voltage per bus·phase" + note, fontsize=10)
    ax.set_xlabel("time")
    yield Figure("grid_voltage_heatmap", f"Voltage per bus·phase over time on a scale centred on "
                 f"1 pu; black marks on the colour bar are the limits {lo:g} and {hi:g} pu (red "
                 f"above, blue below 1 pu){note}.", fig)


def grid_losses(run: RunData, opts: Options) -> Iterator[Figure]:
    rows = _per_window(run, f"""SELECT "window", value FROM ({LAST_SOLVE.format(grid='grid')})
                                WHERE quantity = 'losses_kw'""")
    if rows.empty:
        return
    times = run.time_of(range(run.windows))
    fig, (ax,) = plots.new()
    plots.time_series(ax, times, plots.full_index(rows["value"], run.windows), "P_loss")
    ax.set_ylim(bottom=0)
    plots.date_axis(ax, times)
    plots.finish(fig, ax, "Feeder losses", "time", "losses, kW", legend=False)
    yield Figure("grid_losses", "Real-power losses of the feeder in each window's committed "
                 "state (kW).", fig)


def grid_vuf(run: RunData, opts: Options) -> Iterator[Figure]:
    rows = _per_window(run, f"""SELECT "window", value FROM ({LAST_SOLVE.format(grid='grid')})
                                WHERE quantity = 'max_vuf_pct'""")
    if rows.empty:
        return
    times = run.time_of(range(run.windows))
    fig, (ax,) = plots.new()
    plots.time_series(ax, times, plots.full_index(rows["value"], run.windows), "max VUF")
    plots.limit_lines(ax, None, run.grid_limits()["vuf_max_pct"], "%")
    ax.set_ylim(bottom=0)
    plots.date_axis(ax, times)
    plots.finish(fig, ax, "Largest voltage unbalance factor", "time", "VUF, %")
    yield Figure("grid_vuf", "Largest voltage unbalance factor over the feeder's buses per "
                 "window, with the VUF limit (dashed).", fig)


def _transactions(run: RunData, window: int) -> pd.DataFrame:
    from lemcosim.analysis.amm import transactions_query

    return run.sql(transactions_query('AND "window" = ?'), [window])


def _tx_window(run: RunData, opts: Options) -> int | None:
    if opts.window is not None:
        return opts.window
    busiest = run.sql("""SELECT "window", count(*) AS n FROM logs WHERE federate = 'amm'
        AND quantity = 'rho' GROUP BY "window" ORDER BY n DESC, "window" LIMIT 1""")
    return None if busiest.empty else int(busiest["window"].iloc[0])


def amm_prices(run: RunData, opts: Options) -> Iterator[Figure]:
    """Per transaction of one window (ρ_i, ρ_i^eff, ρ_ES^i and the loss surcharge), and for
    multi-window runs the closing price over time."""
    window = _tx_window(run, opts)
    if window is None:
        return
    tx = _transactions(run, window)
    tx = tx[tx["approved"] & tx["rho"].notna()].reset_index(drop=True)
    if not tx.empty:
        yield _price_panels(run, tx, window)
    if run.windows > 1:
        prices = _per_window(run, """PIVOT (SELECT "window", quantity, value FROM logs
            WHERE federate = 'amm' AND entity = 'market'
              AND quantity IN ('opening_price', 'closing_price'))
            ON quantity USING any_value(value)""")
        times = run.time_of(range(run.windows))
        fig, (ax,) = plots.new()
        for i, col in enumerate(("opening_price", "closing_price")):
            if col in prices:
                plots.time_series(ax, times, plots.full_index(prices[col], run.windows),
                                  col.replace("_", " "), style=i, step=True)
        plots.date_axis(ax, times)
        plots.finish(fig, ax, "AMM pool price per window", "time", "price, M/kWh")
        yield Figure("amm_price_series", f"Opening and closing pool price of each window (gaps: "
                     f"windows without trading). {MONEY_NOTE}", fig)


def _price_panels(run: RunData, tx: pd.DataFrame, window: int) -> Figure:
    """Top: ρ_i and the prices that differ from it; bottom: their differences from ρ_i, so that
    series equal to ρ_i (no loss compensation, storage paid the pool price) are said, not hidden."""
    x = np.arange(1, len(tx) + 1)
    rho = tx["rho"].to_numpy(dtype=float)
    same, differ = [], []
    for col, label in (("rho_eff", "ρ_i^eff, with loss compensation"),
                       ("rho_es", "ρ_ES^i, paid to storage")):
        if col not in tx or tx[col].isna().all():
            continue
        values = tx[col].to_numpy(dtype=float)
        (same if np.nanmax(np.abs(values - rho)) < 1e-9 else differ).append((col, label, values))
    fig, axes = plots.new(rows=2 if differ else 1, height=3.0)
    ax = axes[0]
    equal = "".join(f" = {label.split(',')[0]}" for _, label, _ in same)
    ax.plot(x, rho, label=f"ρ_i, pool price{equal}", markersize=6, **plots.STYLES[0])
    for i, (_, label, values) in enumerate(differ, start=1):
        ax.plot(x, values, label=label, markersize=5, markerfacecolor="none", **plots.STYLES[i])
    plots.finish(fig, ax, f"Prices per approved transaction, window {window} "
                 f"({run.time_of([window])[0]:%Y-%m-%d %H:%M})", "", "price, M/kWh")
    if differ:
        dax = axes[1]
        width = 0.8 / len(differ)
        for i, (_, label, values) in enumerate(differ):
            dax.bar(x + (i - (len(differ) - 1) / 2) * width, values - rho, width=width,
                    label=f"{label.split(',')[0]} − ρ_i", color=["tab:orange", "tab:green"][i])
        dax.axhline(0, color="grey", linewidth=0.8)
        plots.finish(fig, dax, "", "", "difference from ρ_i, M/kWh")
    axes[-1].set_xlabel("approved transaction (order of arrival)")
    axes[-1].set_xticks(x if len(x) <= 40 else x[:: max(1, len(x) // 20)])
    return Figure("amm_prices", f"Pool price ρ_i of each approved transaction in window {window}, "
                  "with the effective price ρ_i^eff (loss compensation) and the storage price "
                  "ρ_ES^i; the lower panel shows how far each lies from ρ_i (prices equal to ρ_i "
                  f"are named in the legend). {MONEY_NOTE}", fig)


def amm_approvals(run: RunData, opts: Options) -> Iterator[Figure]:
    counts = _per_window(run, """PIVOT (SELECT "window", quantity, value FROM logs
        WHERE federate = 'amm' AND entity = 'market' AND quantity IN ('approved', 'rejected'))
        ON quantity USING any_value(value)""")
    if counts.empty or run.windows < 2:
        return
    counts = counts.reindex(range(run.windows)).fillna(0.0)
    days = run.windows * run.window_s > 3 * 86400
    times = run.time_of(range(run.windows))
    if days:  # a long run: per day
        counts = counts.groupby(times.normalize()).sum()
        times = pd.DatetimeIndex(counts.index)
    fig, (ax,) = plots.new()
    width = (times[1] - times[0]) * 0.9 if len(times) > 1 else pd.Timedelta(run.window_s, "s")
    ax.bar(times, counts.get("approved", 0.0), width=width, align="edge", label="approved",
           color="tab:green")
    ax.bar(times, counts.get("rejected", 0.0), width=width, align="edge", label="rejected",
           bottom=counts.get("approved", 0.0), color="tab:red")
    plots.date_axis(ax, times)
    plots.finish(fig, ax, "Transactions per " + ("day" if days else "window"), "time",
                 "transactions")
    yield Figure("amm_approvals", "Approved and rejected transactions per "
                 + ("day." if days else "window."), fig)


def amm_alpha(run: RunData, opts: Options) -> Iterator[Figure]:
    alpha = run.sql("""SELECT entity, quantity, value FROM logs WHERE federate = 'amm'
                       AND quantity LIKE 'alpha\\_%' ESCAPE '\\' ORDER BY time_s""")
    if alpha.empty:
        return
    order = list(dict.fromkeys(alpha["entity"]))
    table = alpha.pivot(index="entity", columns="quantity", values="value").reindex(order)
    table = table[sorted(table.columns)]
    shown = table.iloc[:60]
    fig, (ax,) = plots.new(height=max(2.6, 0.32 * len(shown) + 1.4))
    values = shown.to_numpy(dtype=float)
    span = max(1e-3, float(np.nanmax(np.abs(values))))
    image = ax.imshow(values, aspect="auto", cmap="PuOr_r", vmin=-span, vmax=span)
    ax.set_xticks(range(len(shown.columns)), [f"α_{c[6:]}" for c in shown.columns])
    ax.set_yticks(range(len(shown)), list(shown.index), fontsize=7)
    if values.size <= 300:
        for (r, c), v in np.ndenumerate(values):
            ax.text(c, r, f"{v:.3f}", ha="center", va="center", fontsize=6)
    fig.colorbar(image, ax=ax, label="α, pu (0: no injection)")
    ax.set_title("FSVR coefficients committed with each assisted transaction", fontsize=10)
    more = f" (first 60 of {len(table)})" if len(table) > 60 else ""
    yield Figure("amm_alpha", "The nine FSVR coefficients α (pu; V_out,p = V_in,p + Σ_k α_pk "
                 "V_in,k, so 0 injects nothing) committed with each FSVR-assisted approval, one "
                 f"row per transaction (thesis table 5.7){more}.", fig)


def ch4_convergence(run: RunData, opts: Options) -> Iterator[Figure]:
    rows = run.sql("""SELECT entity, text FROM logs WHERE federate = 'fsvr_controller'
                      AND quantity = 'history' ORDER BY time_s""")
    if rows.empty:
        return
    curves = [(entity, [h[0] for h in json.loads(text)], [h[1] for h in json.loads(text)])
              for entity, text in zip(rows["entity"], rows["text"], strict=True)]
    finals = [y[-1] for _, _, y in curves]
    lowest = min(min(y) for _, _, y in curves)
    # the voltage penalty of infeasible settings dwarfs the objective: a second panel zooms on
    # the feasible range, where the methods differ
    zoom = lowest > 0 and max(max(y) for _, _, y in curves) > 100 * max(finals)
    fig, axes = plots.new(rows=2 if zoom else 1, height=3.4 if zoom else 4.2, sharex=True)
    for ax in axes:
        for i, (entity, x, y) in enumerate(curves):
            style = dict(plots.STYLES[i % len(plots.STYLES)])
            style.pop("marker")
            ax.step(x, y, where="post", label=entity, **style)
    if lowest > 0:
        axes[0].set_yscale("log")
    if zoom:
        span = max(finals) - lowest
        axes[1].set_ylim(lowest - 0.1 * span - 1e-9, max(finals) + 0.5 * span + 1e-9)
        plots.finish(fig, axes[1], "", "", "best objective (feasible range)", legend=False)
    plots.finish(fig, axes[0], "Solution quality against the number of power flows", "",
                 "best objective (with voltage penalty)")
    axes[-1].set_xlabel("power flows")
    yield Figure("ch4_convergence", "Best objective found by each device:method against the "
                 "power flows it spent (log scale)" + ("; the lower panel zooms on the feasible "
                 "range below the voltage penalty." if zoom else "."), fig)


def auction_mcp(run: RunData, opts: Options) -> Iterator[Figure]:
    from lemcosim.analysis.auction import clearing_query

    clearing = run.sql(clearing_query())
    if clearing.empty:
        return
    clusters = sorted(clearing["cluster"].unique())
    fig, (ax,) = plots.new()
    if run.windows <= 12:  # grouped bars: equal prices stay visible side by side
        width = 0.8 / len(clusters)
        for i, cluster in enumerate(clusters):
            rows = clearing[clearing["cluster"] == cluster]
            ax.bar(rows["window"] + (i - (len(clusters) - 1) / 2) * width, rows["mcp"],
                   width=width, label=str(cluster), hatch=["", "//", "..", "xx"][i % 4])
        ax.set_xticks(sorted(clearing["window"].unique()),
                      [f"{w}\n{t:%H:%M}" for w, t in zip(
                          sorted(clearing["window"].unique()),
                          run.time_of(sorted(clearing["window"].unique())), strict=True)])
        xlabel = "window (start time)"
    else:
        times = run.time_of(range(run.windows))
        for i, cluster in enumerate(clusters):
            rows = clearing[clearing["cluster"] == cluster].set_index("window")["mcp"]
            plots.time_series(ax, times, plots.full_index(rows, run.windows), str(cluster),
                              style=i, step=True, linewidth=2.2 - 0.5 * i)
        plots.date_axis(ax, times)
        xlabel = "time"
    plots.finish(fig, ax, "Market clearing price per cluster", xlabel, "MCP, M/kWh")
    yield Figure("auction_mcp", "Market clearing price of each cluster per window (clusters in "
                 f"different price areas differ when a line limit binds). {MONEY_NOTE}", fig)


def auction_curves(run: RunData, opts: Options) -> Iterator[Figure]:
    from lemcosim.analysis.auction import aggregate_curves, price_of_levels

    windows = run.sql("""SELECT DISTINCT "window" FROM logs WHERE federate = 'mo'
                         AND quantity LIKE 'aggregate_%' ORDER BY 1""")["window"].tolist()
    if not windows:
        return
    window = opts.window if opts.window in windows else windows[0]
    curves = aggregate_curves(run, window)
    prices = price_of_levels(run.scenario, int(curves["level"].max()) + 1)
    clusters = sorted(curves["cluster"].unique())
    fig, axes = plots.new(rows=len(clusters), height=2.6)
    mcp = run.sql("""SELECT entity, value FROM logs WHERE federate = 'mo' AND quantity = 'mcp'
                     AND "window" = ?""", [window]).set_index("entity")["value"]
    for ax, cluster in zip(axes, clusters, strict=True):
        rows = curves[curves["cluster"] == cluster]
        for i, side in enumerate(("buy", "sell")):
            part = rows[rows["side"] == side].sort_values("level")
            if not part.empty:
                ax.step(prices[part["level"].to_numpy()], part["kwh"], where="mid",
                        label="demand (buy)" if side == "buy" else "supply (sell)",
                        **dict(plots.STYLES[i]))
        if cluster in mcp:
            ax.axvline(mcp[cluster], color="black", linestyle="--",
                       label=f"MCP {mcp[cluster]:.3f}")
        plots.finish(fig, ax, f"cluster {cluster}", "", "kWh")
    axes[-1].set_xlabel("price, M/kWh")
    fig.suptitle(f"Aggregate bid curves, window {window} ({run.time_of([window])[0]:%Y-%m-%d %H:%M})")
    yield Figure("auction_curves", f"Decrypted aggregate demand and supply of each cluster in "
                 f"window {window} against price, with the clearing price (dashed); choose the "
                 f"window with `lemcosim analyze --window W`. {MONEY_NOTE}", fig)


FIGURES: list[FigureMaker] = [
    prosumer_net_injection, grid_voltage_band, grid_voltage_heat_map, grid_losses, grid_vuf,
    amm_prices, amm_approvals, amm_alpha, ch4_convergence, auction_mcp, auction_curves,
]
