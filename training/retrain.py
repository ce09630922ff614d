"""Retrain a served model from the feedback people gave, and promote it only when it measures better.

    python -m training.retrain --task digit --data-dir ../shared/data
    python -m training.retrain --task digit --list
    python -m training.retrain --task digit --rollback [--to VERSION]

1. Labelled feedback of the task is read from the store (or an exported zip). Each input image is
   run through today's preprocessing again, so feedback given under an older version still fits.
2. The feedback is split by prediction id: a held-out part (``--holdout``) is only measured.
3. The rest is mixed with a replay sample of the original training data, so the model keeps what
   it knew, with the class balance of the replay kept (``training_mix``). The model being served
   is fine-tuned on that mix with the usual augmentation and frozen batch-norm statistics, and the
   candidate's weights are taken halfway between the served and the fine-tuned ones.
4. Candidate and current model are measured on the fixed test split (MNIST test for digits, the
   EMNIST test part for characters) and on the held-out feedback. The candidate is promoted only if
   it is no worse on the test split (by more than ``--max-test-drop``) and better on the feedback.
5. Every candidate is kept (``<models dir>/<task>/v<N>/`` with a meta.json naming its parent, data
   and metrics); promotion switches the active version, which a running app picks up by itself.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from feedback.export import read_zip
from feedback.store import FeedbackRow, FeedbackStore
from models import versions
from models.errors import PreprocessError
from models.loading import load_recognizer, read_meta, write_meta
from models.preprocessing import PREPROCESSING_VERSION, glyph_from_bytes, glyph_from_mnist
from models.registry import TASK_WEIGHTS, WEIGHTS_DIR
from training.data.glyphs import character_data, load_mnist, prepare
from training.lib.fine_tuning import fine_tune, training_mix
from training.provenance import ROOT, command_line, config_record

INSTANCE = ROOT / "instance"


@dataclass(frozen=True)
class RetrainConfig:
    """How a candidate is made and judged; its retraining record keeps this whole (``config``)."""

    task: str  # which model to retrain
    feedback: Path = INSTANCE / "feedback.sqlite3"  # the store (.sqlite3) or an export zip
    models_dir: Path = INSTANCE / "models"  # where versions are kept (the app's MODELS_DIR)
    weights_dir: Path = WEIGHTS_DIR  # the shipped weights
    data_dir: Path | None = None  # the original datasets, for replay and the test split (None: download)
    replay_npz: Path | None = None  # replay data instead of the original training set (x, y)
    test_npz: Path | None = None  # a test split instead of the official one (x, y)
    replay: int = 20000  # original training samples mixed in
    feedback_share: float = 0.5  # share of a corrected class's training places given to its feedback
    holdout: float = 0.3  # share of the feedback kept for measuring
    epochs: int = 3  # fine-tuning epochs
    lr: float = 3e-5  # fine-tuning learning rate
    batch_size: int = 64
    interpolate: float = 0.5  # candidate = served + this fraction of the fine-tuning step (1: plain)
    max_test_drop: float = 0.0  # largest accepted drop of test-split accuracy (0: no worse)
    min_feedback: int = 10  # fewest labelled feedback rows to retrain on
    seed: int = 1

    @property
    def shipped(self) -> Path:
        return self.weights_dir / TASK_WEIGHTS[self.task]


def parse_args(argv=None) -> tuple[RetrainConfig, argparse.Namespace]:
    """(the config, the command's action: ``list``, ``rollback`` and ``to``)."""
    d = RetrainConfig("digit")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=sorted(TASK_WEIGHTS), required=True, help="which model to retrain")
    add_source_flags(p, d)
    add_recipe_flags(p, d)
    p.add_argument("--list", action="store_true", help="list the versions and exit")
    p.add_argument("--rollback", action="store_true", help="serve the active version's parent (or --to) and exit")
    p.add_argument("--to", default=None, help="with --rollback: the version to serve")
    args = vars(p.parse_args(argv))
    action = argparse.Namespace(**{k: args.pop(k) for k in ("list", "rollback", "to")})
    return RetrainConfig(**args), action


def add_source_flags(p: argparse.ArgumentParser, d: RetrainConfig) -> None:
    """Where the feedback, the versions, the shipped weights and the original data are."""
    p.add_argument(
        "--feedback",
        type=Path,
        default=d.feedback,
        help="the feedback store (.sqlite3) or an export made by `flask feedback export --format zip`",
    )
    p.add_argument(
        "--models-dir", type=Path, default=d.models_dir, help="where versions are kept (the app's MODELS_DIR)"
    )
    p.add_argument("--weights-dir", type=Path, default=d.weights_dir, help="the shipped weights")
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="the original datasets, for replay and the test split (default: download)",
    )
    p.add_argument(
        "--replay-npz",
        type=Path,
        default=None,
        help="replay data instead of the original training set: .npz with x (N,28,28 uint8, white "
        "on black) and y (class ids)",
    )
    p.add_argument("--test-npz", type=Path, default=None, help="test split instead of the official one (as above)")


def add_recipe_flags(p: argparse.ArgumentParser, d: RetrainConfig) -> None:
    """How the candidate is trained and judged."""
    p.add_argument("--replay", type=int, default=d.replay, help="original training samples mixed in")
    p.add_argument(
        "--feedback-share",
        type=float,
        default=d.feedback_share,
        help="share of a corrected class's places given to its feedback",
    )
    p.add_argument("--holdout", type=float, default=d.holdout, help="share of the feedback kept for measuring")
    p.add_argument("--epochs", type=int, default=d.epochs, help="fine-tuning epochs")
    p.add_argument("--lr", type=float, default=d.lr, help="fine-tuning learning rate")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="mini-batch size")
    p.add_argument(
        "--interpolate",
        type=float,
        default=d.interpolate,
        help="candidate = served + this fraction of the fine-tuning step (1: plain fine-tuning)",
    )
    p.add_argument(
        "--max-test-drop",
        type=float,
        default=d.max_test_drop,
        help="largest accepted drop of test-split accuracy (0: must be no worse)",
    )
    p.add_argument(
        "--min-feedback", type=int, default=d.min_feedback, help="fewest labelled feedback rows to retrain on"
    )
    p.add_argument("--seed", type=int, default=d.seed, help="random seed")


def read_feedback(path: Path, task: str) -> list[FeedbackRow]:
    """Labelled feedback of ``task`` from a store file or an exported zip."""
    if not path.exists():
        raise SystemExit(f"No feedback at {path}: give feedback in the app first, or pass --feedback.")
    if path.suffix == ".zip":
        rows = read_zip(str(path))
    else:
        rows = FeedbackStore(path).feedback(task, labelled_only=True)
    return [r for r in rows if r.task == task and r.label]


def feedback_glyphs(rows: list[FeedbackRow], labels: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(glyphs, class ids, prediction ids) of the rows, as today's preprocessing makes them: the
    28x28 the model saw when it was made by today's preprocessing, else the stored input prepared
    again (a glyph read on a page was stored as a crop of the page, with its neighbours, which is
    not read again: such a row is skipped)."""
    glyphs, ids, pids = [], [], []
    for r in rows:
        if r.label not in labels:
            continue
        if r.preprocessing_version == PREPROCESSING_VERSION:  # what the model saw is what today's code makes
            glyphs.append(np.asarray(Image.open(io.BytesIO(r.model_input_png)).convert("L")))
        elif r.source == "page":
            continue
        else:
            try:
                glyphs.append(glyph_from_bytes(r.input_png).pixels)
            except PreprocessError:
                continue
        ids.append(labels.index(r.label))
        pids.append(r.prediction_id)
    return np.array(glyphs, np.uint8).reshape(-1, 28, 28), np.array(ids, np.int64), pids


def in_holdout(prediction_id: str, share: float) -> bool:
    """A stable split: the same feedback row is always on the same side."""
    return int(hashlib.sha256(prediction_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < share


def npz_glyphs(path: Path) -> tuple[np.ndarray, np.ndarray]:
    d = np.load(path)
    return np.stack([glyph_from_mnist(a) for a in d["x"]]), d["y"].astype(np.int64)


def original_data(cfg: RetrainConfig) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(replay pool, test split) as prepared glyphs and class ids."""
    if cfg.replay_npz and cfg.test_npz:
        return npz_glyphs(cfg.replay_npz), npz_glyphs(cfg.test_npz)
    if cfg.task == "digit":
        x_train, y_train, x_test, y_test = load_mnist(cfg.data_dir)
        pool, test = (prepare(x_train), y_train.astype(np.int64)), (prepare(x_test), y_test.astype(np.int64))
    else:
        data = character_data(cfg.data_dir)
        pool = (
            np.concatenate([d["x_train"] for d in data.values()]),
            np.concatenate([d["y_train"] for d in data.values()]).astype(np.int64),
        )
        test = data["emnist"]["x_test"], data["emnist"]["y_test"].astype(np.int64)
    if cfg.replay_npz:
        pool = npz_glyphs(cfg.replay_npz)
    if cfg.test_npz:
        test = npz_glyphs(cfg.test_npz)
    return pool, test


def accuracy(model, x: np.ndarray, y: np.ndarray) -> float:
    if len(x) == 0:
        return float("nan")
    probs = np.concatenate([model.probabilities(x[i : i + 1000]) for i in range(0, len(x), 1000)])
    return round(float((probs.argmax(1) == y).mean()), 5)


@dataclass
class Feedback:
    """The labelled feedback rows as glyphs, and which of them are held out for measuring."""

    x: np.ndarray
    y: np.ndarray
    held: np.ndarray  # bool per row


def labelled_feedback(cfg: RetrainConfig, labels: list[str]) -> Feedback:
    """The task's labelled feedback through today's preprocessing, split by a stable hash of the
    prediction id; refuses too few rows."""
    x_fb, y_fb, pids = feedback_glyphs(read_feedback(cfg.feedback, cfg.task), labels)
    if len(y_fb) < cfg.min_feedback:
        raise SystemExit(
            f"Only {len(y_fb)} labelled {cfg.task} feedback rows; need {cfg.min_feedback} (--min-feedback)."
        )
    held = np.array([in_holdout(p, cfg.holdout) for p in pids])
    if held.all() or not held.any():
        held = np.arange(len(pids)) % max(2, round(1 / cfg.holdout)) == 0  # too few rows for the hash split
    return Feedback(x_fb, y_fb, held)


def measure(current, candidate, fb: Feedback, test: tuple[np.ndarray, np.ndarray]) -> dict:
    """Current and candidate accuracy on the test split and on the held-out feedback."""
    (test_x, test_y), held = test, fb.held
    return {
        "test_split": {
            "current": accuracy(current, test_x, test_y),
            "candidate": accuracy(candidate, test_x, test_y),
            "samples": len(test_y),
        },
        "feedback_holdout": {
            "current": accuracy(current, fb.x[held], fb.y[held]),
            "candidate": accuracy(candidate, fb.x[held], fb.y[held]),
            "samples": int(held.sum()),
        },
    }


def retrain(cfg: RetrainConfig) -> dict:
    """Run steps 1-5 of the module docstring; returns the new version's retraining record."""
    from training.lib.loop import save_weights  # TensorFlow: only a retraining pays for its import

    current_dir = versions.active_dir(cfg.models_dir, cfg.shipped, cfg.task)
    current = load_recognizer(current_dir, cfg.task)
    fb = labelled_feedback(cfg, current.labels)
    (pool_x, pool_y), test = original_data(cfg)
    rng = np.random.default_rng(cfg.seed)
    pick = rng.choice(len(pool_y), min(cfg.replay, len(pool_y)), replace=False)
    x, y, mix = training_mix(pool_x[pick], pool_y[pick], fb.x[~fb.held], fb.y[~fb.held], cfg.feedback_share, rng)
    print(f"fine-tuning {cfg.task} v{current.version} on {mix['replay']} replay + {mix['feedback']} feedback images")
    candidate_model = fine_tune(current_dir, x, y, cfg.seed, cfg.lr, cfg.batch_size, cfg.epochs, cfg.interpolate)

    number, out = versions.new_version_dir(cfg.models_dir, cfg.task, read_meta(cfg.shipped).get("version", "1"))
    meta = {k: v for k, v in current.meta.items() if k not in ("metrics", "unsure", "training")}
    save_weights(
        candidate_model, out, meta | {"version": number, "unsure": current.meta.get("unsure", {})}, "training.retrain"
    )
    metrics = measure(current, load_recognizer(out, cfg.task), fb, test)
    t, f = metrics["test_split"], metrics["feedback_holdout"]
    promoted = t["candidate"] >= t["current"] - cfg.max_test_drop and f["candidate"] > f["current"]
    record = {
        "parent": current.version,
        "promoted": promoted,
        "metrics": metrics,
        "rule": f"test accuracy no worse than current - {cfg.max_test_drop} and feedback accuracy better",
        "data": {
            "feedback_train": int((~fb.held).sum()),
            "feedback_holdout": int(fb.held.sum()),
            "mix": mix,
            "source": str(cfg.feedback.name),
            "preprocessing_version": PREPROCESSING_VERSION,
        },
        "training": {"epochs": cfg.epochs, "lr": cfg.lr, "batch_size": cfg.batch_size, "seed": cfg.seed},
        "config": config_record(cfg),
        "command": command_line("training.retrain"),
    }
    write_meta(out, read_meta(out) | {"retraining": record})
    if promoted:
        promote(cfg, out, current_dir, record)
    return record | {"version": number, "folder": str(out)}


def promote(cfg: RetrainConfig, out: Path, trained_from: Path, record: dict) -> None:
    """Serve ``out``, unless the served model changed while it trained (then its record says so)."""
    now = versions.active_dir(cfg.models_dir, cfg.shipped, cfg.task)
    if now != trained_from:  # someone promoted or rolled back while this was training
        record["promoted"] = False
        record["not_promoted_because"] = f"the served model changed during training (now {now.name})"
        write_meta(out, read_meta(out) | {"retraining": record})
    else:
        versions.set_active(cfg.models_dir, cfg.task, out.name)


def list_kept(cfg: RetrainConfig) -> None:
    """Print every kept version of the task, one JSON object a line."""
    for v in versions.list_versions(cfg.models_dir, cfg.shipped, cfg.task):
        print(json.dumps(v))


def roll_back(cfg: RetrainConfig, to: str | None) -> None:
    """Serve version ``to`` (default: the one before the served one) again."""
    try:
        name = versions.rollback(cfg.models_dir, cfg.shipped, cfg.task, to)
    except (ValueError, FileNotFoundError) as exc:
        sys.exit(str(exc))
    print(f"{cfg.task}: now serving {name}")


def report(record: dict) -> None:
    """The candidate's figures beside the served model's, and the verdict."""
    t, f = record["metrics"]["test_split"], record["metrics"]["feedback_holdout"]
    print(f"test split ({t['samples']}): current {t['current']:.4f}, candidate {t['candidate']:.4f}")
    print(f"held-out feedback ({f['samples']}): current {f['current']:.4f}, candidate {f['candidate']:.4f}")
    verdict = "promoted: now served" if record["promoted"] else "kept, not promoted"
    print(f"version {record['version']} ({record['folder']}): {verdict}")


def main(argv=None) -> None:
    cfg, action = parse_args(argv)
    if action.list:
        list_kept(cfg)
    elif action.rollback:
        roll_back(cfg, action.to)
    else:
        report(retrain(cfg))


if __name__ == "__main__":
    main()
