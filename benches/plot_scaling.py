"""Plots target/scaling.csv (from `cargo bench --bench scaling`) into docs/scaling.png.

Needs matplotlib (`pip install matplotlib`). One panel per series: wall seconds and peak RSS
against the records in the range, the topic count and the partition count, on log x axes.
"""
import csv
import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

root = pathlib.Path(__file__).resolve().parent.parent
rows = list(csv.DictReader(open(root / "target" / "scaling.csv")))
series = [("records", "records in the range"), ("topics", "topics (4 partitions, 20,000 records each)"),
          ("partitions", "partitions (200,000 records in one topic, from 8)")]
fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
for ax, (name, label) in zip(axes, series):
    points = [r for r in rows if r["series"] == name]
    x = [int(r["x"]) for r in points]
    ax.plot(x, [float(r["seconds"]) for r in points], "o-", color="tab:blue", label="wall seconds")
    ax.plot(x, [float(r["cpu_seconds"]) for r in points], "s--", color="tab:green", label="CPU seconds")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(label)
    ax.set_ylabel("seconds")
    ax.grid(True, which="both", alpha=0.3)
    rss = ax.twinx()
    rss.plot(x, [float(r["peak_rss_mb"]) for r in points], "^-", color="tab:red", label="peak RSS (MB)")
    rss.set_ylabel("peak RSS, MB", color="tab:red")
    rss.set_ylim(0, 300)
    rss.axhline(256, color="tab:red", alpha=0.3, linestyle=":")
    lines = ax.get_lines()[:2] + rss.get_lines()[:1]
    ax.legend(lines, [l.get_label() for l in lines], loc="upper left", fontsize=8)
fig.suptitle("runner once, Avro (Schema Registry framing) from librdkafka's mock cluster, 2 cores")
fig.tight_layout()
fig.savefig(root / "docs" / "scaling.png", dpi=110)
print("wrote", root / "docs" / "scaling.png")
