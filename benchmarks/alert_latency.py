"""Alert latency: from a mention's appearance at a local fake feed to the email's arrival at a
local SMTP server, over several mentions.

`mentionwatch run` (the scheduler, a real process) polls the feed every `--interval` seconds
with the default rule packs; the config lowers the alert priority threshold so every angry
post alerts, and sends each alert at once (no digest window). The mentions appear at random
moments within the interval. Target: max latency <= interval + 2 s.

Last printed line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.feedserver import FeedServer, rss
from tests.smtpsink import SmtpServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mentions", type=int, default=6)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=8)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    tmp = Path(tempfile.mkdtemp(prefix="mw-alert-bench-"))
    feeds, smtp = FeedServer(), SmtpServer().start()
    items: list[dict[str, str]] = []
    feeds.add("/f.xml", rss(items))
    config = tmp / "mentionwatch.toml"
    config.write_text(f"""
[brand]
name = "Acme"
terms = ["acme"]
[database]
url = "sqlite:///{tmp / 'mw.db'}"
[alerts]
on_call = ["oncall@acme.example"]
priority_threshold = 0.1
digest_window = "0s"
triggers = ["mention"]
[alerts.smtp]
host = "127.0.0.1"
port = {smtp.port}
security = "none"
[[sources]]
name = "forum"
kind = "rss"
url = "{feeds.base_url}/f.xml"
interval = "{args.interval}s"
""", encoding="utf-8")

    daemon = subprocess.Popen(
        [sys.executable, "-m", "mentionwatch", "--config", str(config), "run"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = time.monotonic()
    while not feeds.seen("/f.xml") and time.monotonic() < started + 30:
        time.sleep(0.05)  # the first (empty) pass is done
    latencies: list[float] = []
    try:
        for n in range(args.mentions):
            time.sleep(rng.uniform(0.5, args.interval))  # land anywhere in the interval
            seen = len(smtp.messages)
            items.insert(0, {"title": f"acme outage {n}", "guid": f"post-{n}",
                             "link": f"https://forum.example/t/{n}",
                             "description": f"I am furious with Acme, day {n} offline"})
            feeds.add("/f.xml", rss(items))
            appeared = time.monotonic()
            deadline = appeared + args.interval * 4 + 10
            while len(smtp.messages) == seen and time.monotonic() < deadline:
                time.sleep(0.02)
            if len(smtp.messages) == seen:
                raise SystemExit(f"mention {n}: no email within {deadline - appeared:.0f} s")
            latencies.append(time.monotonic() - appeared)
            print(f"mention {n}: email after {latencies[-1]:.2f} s", flush=True)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)
        smtp.stop()
        feeds.close()
    result = {
        "benchmark": "alert_latency",
        "driver": "mentionwatch run",
        "judge": "default rule packs",
        "interval_s": args.interval,
        "mentions": len(latencies),
        "median_s": round(statistics.median(latencies), 2),
        "max_s": round(max(latencies), 2),
        "max_over_interval": round(max(latencies) / args.interval, 3),
        "target_max_s": args.interval + 2,
        "target_met": max(latencies) <= args.interval + 2,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
