"""``flask --app app recognize``: one JSON object per image, one per line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from app import recognize_command
from tests.helpers import ONE, ONE_PNG, ROOT, SEVEN_PNG, canvas_digit, make_app, png_bytes


def lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_files_and_folders(runner, tmp_path):
    (tmp_path / "seven.png").write_bytes(SEVEN_PNG)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "one.jpg").write_bytes(png_bytes(canvas_digit(ONE), "JPEG"))
    (tmp_path / "sub" / "notes.txt").write_text("not an image, and not picked up from a folder")
    result = runner.invoke(recognize_command, ["--task", "digit", str(tmp_path)])
    assert result.exit_code == 0, result.output
    out = lines(result.output)
    assert [Path(o["file"]).name for o in out] == ["seven.png", "one.jpg"]
    assert [o["text"] for o in out] == ["7", "1"]
    assert all(set(o) >= {"task", "confidence", "candidates", "input_28x28", "model"} for o in out)


def test_bad_files_are_reported_and_fail_the_command(runner, tmp_path):
    (tmp_path / "blank.png").write_bytes(png_bytes(canvas_digit([])))
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "seven.png").write_bytes(SEVEN_PNG)
    files = [str(tmp_path / n) for n in ("blank.png", "notes.txt", "seven.png")]
    result = runner.invoke(recognize_command, files)
    assert result.exit_code == 1
    out = lines(result.output)
    assert [o.get("error", {}).get("code") for o in out] == ["blank_image", "not_an_image", None]
    assert out[2]["text"] == "7"


def test_unknown_task(runner, tmp_path):
    (tmp_path / "seven.png").write_bytes(SEVEN_PNG)
    result = runner.invoke(recognize_command, ["--task", "klingon", str(tmp_path / "seven.png")])
    assert result.exit_code == 1
    error = lines(result.output)[0]["error"]
    assert error["code"] == "unknown_task"
    assert "page" in error["message"] and "line" in error["message"]  # every task offered, not the glyph ones only


def test_a_busy_port_is_said_plainly_before_loading_models(tmp_path):
    """A busy port used to load the models for 12 s, log "serving on", then die with a raw OSError."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = os.environ | {
            "HWR_PORT": str(port),
            "HWR_FEEDBACK_DB": str(tmp_path / "fb.sqlite3"),
            "TF_CPP_MIN_LOG_LEVEL": "3",
        }
        proc = subprocess.run(
            [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
    assert proc.returncode == 1
    assert f"Cannot serve on 127.0.0.1:{port}" in proc.stderr and "Traceback" not in proc.stderr
    assert "serving on" not in proc.stderr + proc.stdout


def test_flask_command_line(tmp_path):
    """The documented command, in a real process."""
    (tmp_path / "one.png").write_bytes(ONE_PNG)
    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "recognize", "--task", "digit", str(tmp_path / "one.png")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = lines(proc.stdout)
    assert len(out) == 1 and out[0]["text"] == "1" and out[0]["file"].endswith("one.png")


def test_oversized_file_is_refused_without_reading_it(tmp_path):
    runner = make_app(tmp_path, MAX_UPLOAD_BYTES=1000).test_cli_runner()
    (tmp_path / "big.png").write_bytes(SEVEN_PNG + b"\0" * 2000)
    result = runner.invoke(recognize_command, [str(tmp_path / "big.png")])
    assert result.exit_code == 1 and lines(result.output)[0]["error"]["code"] == "too_large"
