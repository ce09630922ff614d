"""Export model folders to ONNX for serving: ``python -m training.export_onnx [FOLDER ...]``.

Writes ``model.onnx`` beside each folder's ``model.keras`` and records it in its ``meta.json``
(``onnx``: sha256, opset, library versions, the largest difference from Keras on the probes).
Training commands export by themselves; this command exports folders made before they did (the
shipped weights, versions kept in an instance folder, personal models). Without folders it exports
every Keras model shipped in ``models/weights``.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from models.loading import KERAS_FILE, read_meta, write_meta
from models.registry import WEIGHTS_DIR
from training.lib.keras_to_onnx import export_onnx


@dataclass(frozen=True)
class ExportConfig:
    """Which folders are exported. Not recorded: each folder's ``onnx`` record (written by
    ``training.lib.keras_to_onnx``, as by every training step) says what was exported and how."""

    folders: tuple[Path, ...] = ()  # model folders (empty: every Keras model in models/weights)


def parse_args(argv: list[str] | None = None) -> ExportConfig:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="*", type=Path, help="model folders (default: every one in models/weights)")
    return ExportConfig(tuple(p.parse_args(argv).folders))


def chosen_folders(cfg: ExportConfig) -> list[Path]:
    """The folders named, or every shipped folder with a Keras model."""
    return list(cfg.folders) or sorted(d for d in WEIGHTS_DIR.iterdir() if (d / KERAS_FILE).exists())


def export_folder(folder: Path) -> dict:
    """Export ``folder/model.keras`` and record the export in ``folder/meta.json``."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    model = keras.models.load_model(folder / KERAS_FILE, compile=False)
    record = export_onnx(model, folder)
    write_meta(folder, read_meta(folder) | {"onnx": record})
    return record


def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(argv)
    for folder in chosen_folders(cfg):
        record = export_folder(folder)
        print(f"{folder}: opset {record['opset']}, max |ONNX - Keras| {record['max_abs_diff']:.2e}", flush=True)


if __name__ == "__main__":
    main()
