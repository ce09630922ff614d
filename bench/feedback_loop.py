"""The feedback loop at full scale: ``python bench/feedback_loop.py --data-dir ../shared/data``.

A simulated writer whose 7s lie far over to the left (the same writer as ``tests/test_retrain.py``)
reads ``--n`` of them through the API and answers every one with the right label. Then
``training.retrain`` fine-tunes on that feedback plus a replay of MNIST train, and measures current
and candidate model on the official MNIST test split and on held-out feedback. Finally the running
app (which picks up a promotion by itself) reads fresh 7s by the same writer. Everything happens in
a temporary folder; the shipped weights are not touched.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from app import create_app  # noqa: E402
from bench.canvas import SEVEN  # noqa: E402
from models.registry import Registry  # noqa: E402
from tests.helpers import canvas_digit, data_url, png_bytes  # noqa: E402
from training import retrain  # noqa: E402


def slanted_sevens(n: int, seed: int, slant: float = -60.0) -> list[bytes]:
    """PNG canvases of 7s lying ``slant`` degrees over, with natural jitter in slant, position,
    size and pen width."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        a = np.radians(slant + rng.normal(0, 4))
        scale, dx, dy = rng.uniform(0.8, 1.1), rng.normal(0, 0.04), rng.normal(0, 0.04)
        pts = []
        for x, y in SEVEN:
            x, y = (x - 0.5) * scale + rng.normal(0, 0.02), (y - 0.5) * scale + rng.normal(0, 0.02)
            pts.append((0.5 + dx + x * np.cos(a) - y * np.sin(a), 0.5 + dy + x * np.sin(a) + y * np.cos(a)))
        out.append(png_bytes(canvas_digit([pts], width=int(rng.integers(12, 26)))))
    return out


def top_labels(client, images: list[bytes]) -> list[dict]:
    return [client.post("/submit", json={"image": data_url(png)}).get_json() for png in images]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, required=True, help="folder with mnist/ (replay and test split)")
    p.add_argument("--n", type=int, default=120, help="feedback rows the writer gives")
    p.add_argument("--workdir", type=Path, default=None, help="keep the store and versions here (default: temporary)")
    p.add_argument("retrain_args", nargs="*", help="extra flags for training.retrain (after --)")
    args = p.parse_args()
    Registry.CHECK_SECONDS = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = str(args.workdir) if args.workdir else tmp
        db, models = Path(tmp) / "feedback.sqlite3", Path(tmp) / "models"
        client = create_app({"FEEDBACK_DB": str(db), "MODELS_DIR": str(models)}).test_client()
        before = top_labels(client, slanted_sevens(args.n, seed=1))
        for b in before:
            right = b["candidates"][0]["label"] == "7"
            client.post("/feedback", json={"prediction_id": b["prediction_id"], "correct": right, "label": "7"})
        fresh = slanted_sevens(200, seed=99)
        read_before = np.mean([r["candidates"][0]["label"] == "7" for r in top_labels(client, fresh)])
        start = time.time()
        log = io.StringIO()
        with contextlib.redirect_stdout(log):
            retrain.main(
                [
                    "--task",
                    "digit",
                    "--feedback",
                    str(db),
                    "--models-dir",
                    str(models),
                    "--data-dir",
                    str(args.data_dir),
                    *args.retrain_args,
                ]
            )
        seconds = time.time() - start
        after = top_labels(client, fresh)
        read_after = np.mean([r["candidates"][0]["label"] == "7" for r in after])
        print("\n".join(line for line in log.getvalue().splitlines() if not line.startswith(("Epoch", " "))))
        print(f"retraining took {seconds:.0f} s on {os.cpu_count()} CPUs")
        print(
            f"fresh 7s by the same writer read as 7 (top answer): {read_before:.1%} before, {read_after:.1%} after "
            f"(served model version {after[0]['model']['version']})"
        )


if __name__ == "__main__":
    main()
