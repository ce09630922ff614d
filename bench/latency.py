"""Latency of the served path: ``python bench/latency.py [--task digit] [--runs 300]``.

Prints p50/p90/p99 in milliseconds for one canvas image through
- preprocessing alone (data: URL -> 28x28),
- the served forward pass alone (ONNX Runtime),
- preprocessing + forward (what a request costs in ML work),
- ``POST /submit`` end to end through the Flask test client (including the feedback store's
  committed insert of the prediction),
- ``POST /feedback`` (one committed SQLite transaction, fsync'd, before the answer),
- the same network through TensorFlow: a compiled ``tf.function`` (how this server ran before
  ONNX Runtime) and ``keras.Model.predict`` (what a naive server pays),
and batch throughput of the forward pass. Figures depend on the machine: the README quotes them
with the machine they were taken on.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from app import create_app  # noqa: E402
from bench.canvas import SEVEN, drawing, png_url  # noqa: E402
from models.loading import keras_forward  # noqa: E402
from models.preprocessing import decode_data_url, glyph_from_bytes  # noqa: E402
from models.registry import shared_registry  # noqa: E402


def canvas_png() -> str:
    """A 280x280 canvas drawing of a 7, as the page sends it (``png_url``: an opaque RGBA PNG)."""
    return png_url(drawing(SEVEN, joint="curve"))


def timings(fn, runs: int, warmup: int = 10) -> np.ndarray:
    """Wall-clock milliseconds of ``runs`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    out = np.empty(runs)
    for i in range(runs):
        t = time.perf_counter()
        fn()
        out[i] = (time.perf_counter() - t) * 1000
    return out


def summary(ms: np.ndarray) -> dict:
    return {k: round(float(np.percentile(ms, q)), 3) for k, q in (("p50", 50), ("p90", 90), ("p99", 99))}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="digit", help="which glyph model to measure")
    p.add_argument("--runs", type=int, default=300, help="timed calls per measurement")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return p.parse_args()


def tensorflow_forwards(model) -> tuple:
    """The same network through TensorFlow: (the Keras model, its compiled ``tf.function`` forward)."""
    # TensorFlow only for these comparison rows, imported once the served model has loaded without it (ONNX
    # Runtime, as a server loads it); keras_forward imports it too
    import keras

    keras_model = keras.models.load_model(model.path / "model.keras", compile=False)
    return keras_model, keras_forward(model.path, [None, 28, 28, 1], (1, 28, 28, 1))[0]


def feedback_sender(client, url: str, task: str):
    """``POST /feedback`` on one stored answer, alternately right and corrected to 7."""
    pid = client.post("/submit", json={"image": url, "task": task}).get_json()["prediction_id"]
    flip = iter(range(10**9))

    def feedback():
        n = next(flip)
        client.post("/feedback", json={"prediction_id": pid, "correct": n % 2 == 0, "label": None if n % 2 else "7"})

    return feedback


def latencies(url: str, model, pixels: np.ndarray, task: str, runs: int) -> dict:
    """p50/p90/p99 of each measurement, by name."""
    batch1 = pixels.reshape(1, 28, 28, 1)
    keras_model, tf_forward = tensorflow_forwards(model)
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"TESTING": True, "FEEDBACK_DB": str(Path(tmp) / "bench.sqlite3"), "RATELIMIT_ENABLED": False})
        client = app.test_client()
        feedback = feedback_sender(client, url, task)
        return {
            "preprocess": summary(timings(lambda: glyph_from_bytes(decode_data_url(url)), runs)),
            "forward": summary(timings(lambda: model.probabilities(pixels), runs)),
            "preprocess+forward": summary(
                timings(lambda: model.probabilities(glyph_from_bytes(decode_data_url(url)).pixels), runs)
            ),
            "POST /submit": summary(timings(lambda: client.post("/submit", json={"image": url, "task": task}), runs)),
            "POST /feedback": summary(timings(feedback, runs)),
            "tf.function forward": summary(timings(lambda: tf_forward(batch1), runs)),
            "keras predict()": summary(timings(lambda: keras_model.predict(batch1, verbose=0), max(30, runs // 10))),
        }


def throughput(model, pixels: np.ndarray) -> dict:
    """Glyphs per second of the forward pass on batches of 256."""
    glyphs = np.repeat(pixels[None], 256, axis=0)
    batch_ms = timings(lambda: model.probabilities(glyphs), 30, warmup=3)
    return {"batch": 256, "glyphs_per_s": round(256 / (np.median(batch_ms) / 1000))}


def report(results: dict) -> None:
    print(f"{'measurement':<22}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}")
    for name, s in results.items():
        if isinstance(s, dict) and "p50" in s:
            print(f"{name:<22}{s['p50']:>10.3f}{s['p90']:>10.3f}{s['p99']:>10.3f}")
    print(f"forward pass throughput (batch 256): {results['throughput']['glyphs_per_s']:,} glyphs/s")
    print(f"tf.function / ONNX Runtime forward (p50): {results['tf_function_over_forward_p50']}x")
    print(f"keras predict() / ONNX Runtime forward (p50): {results['predict_over_forward_p50']}x")


def main() -> None:
    args = parse_args()
    url = canvas_png()
    model = shared_registry().get(args.task)
    pixels = glyph_from_bytes(decode_data_url(url)).pixels
    results = latencies(url, model, pixels, args.task, args.runs)
    results["throughput"] = throughput(model, pixels)
    forward = results["forward"]["p50"]
    results["predict_over_forward_p50"] = round(results["keras predict()"]["p50"] / forward, 1)
    results["tf_function_over_forward_p50"] = round(results["tf.function forward"]["p50"] / forward, 1)
    results["machine"] = {"cpus": os.cpu_count(), "task": args.task, "runs": args.runs}
    if args.json:
        print(json.dumps(results))
    else:
        report(results)


if __name__ == "__main__":
    main()
