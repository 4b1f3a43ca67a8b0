#!/usr/bin/python3
"""Draws the reliability simulation's time series (RELIABILITY.md "Simulation").

Reads the JSON that `node bench/reliability-sim.ts --json FILE` writes and
saves one PNG per scenario in OUT_DIR. Uses Debian's python3-matplotlib
(scripts/system-deps.sh bench) with the Agg backend: no display, no network.

    /usr/bin/python3 bench/reliability-sim-plot.py FILE OUT_DIR
"""
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

MINUTE_BINS = 6  # 10 s bins per plotted point


def per_minute(bins, key, how):
    out = []
    for i in range(0, len(bins), MINUTE_BINS):
        chunk = [b[key] for b in bins[i : i + MINUTE_BINS]]
        out.append(how(chunk))
    return out


def main(path, out_dir):
    with open(path) as f:
        runs = json.load(f)
    os.makedirs(out_dir, exist_ok=True)
    scenarios = []
    for r in runs:
        if r["scenario"] not in scenarios:
            scenarios.append(r["scenario"])
    colours = {"today": "tab:red", "failure-interval": "tab:orange", "adaptive": "tab:blue", "adaptive-shed": "tab:green"}
    for name in scenarios:
        mine = [r for r in runs if r["scenario"] == name]
        fig, axes = plt.subplots(5, 1, figsize=(10, 13), sharex=True)
        first = mine[0]
        scale = first["scale"]
        per_s = scale / (first["binSeconds"] * MINUTE_BINS)
        for r in mine:
            bins = r["bins"]
            t = [b["t"] / 60 for b in bins[::MINUTE_BINS]]
            c = colours.get(r["policy"], None)
            label = r["policyTitle"].replace("`", "")
            # A log axis has no zero: a minute with nothing served is drawn at 1/s.
            offered = [max(1, x * per_s) for x in per_minute(bins, "offered", sum)]
            served = [max(1, x * per_s) for x in per_minute(bins, "ok", sum)]
            axes[0].plot(t, offered, color=c, linestyle=":", linewidth=1)
            axes[0].plot(t, served, color=c, linewidth=1.5, label=label)
            axes[1].plot(t, [x * scale for x in per_minute(bins, "maxDepth", max)], color=c, linewidth=1.2)
            axes[2].plot(t, per_minute(bins, "p99", max), color=c, linewidth=1.2)
            axes[3].plot(t, [100 * x for x in per_minute(bins, "present", min)], color=c, linewidth=1.2)
            axes[4].plot(t, [x / 60 for x in per_minute(bins, "interval", max)], color=c, linewidth=1.2)
        axes[0].axhline(first["capacityPerSecond"] * scale, color="grey", linewidth=0.8, linestyle="--")
        axes[0].set_ylabel("announces/s\n(solid served,\ndotted offered)")
        axes[0].set_yscale("log")
        axes[1].set_ylabel("store queue,\nmax per minute")
        axes[2].set_ylabel("p99 latency (s),\nworst 10 s per minute")
        axes[3].set_ylabel("live peers the\nstore holds (%)")
        axes[4].set_ylabel("interval (min)")
        axes[4].set_xlabel("minutes (fault at the grey line)")
        for ax in axes:
            ax.axvline(first["faultAt"] / 60, color="grey", linewidth=0.8)
            ax.grid(True, alpha=0.3)
        axes[0].legend(loc="upper right", fontsize=8)
        fig.suptitle(first["scenarioTitle"] + " (capacity: dashed)")
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, name + ".png"), dpi=80, metadata={"Software": None})
        plt.close(fig)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
