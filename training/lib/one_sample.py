"""Teaching a profile one sample of a character: the steps of one teach.

1. **prepare**: the sample through ``models.preprocessing`` (the glyph every model sees);
2. **augment**: ``VARIANTS`` variants (``training.data.augment.one_sample_variants``);
3. **vae**: a small convolutional VAE (``models.architectures.build_vae``) trained on the variants;
   ``VAE_SAMPLES`` new glyphs are decoded from latent points around the sample's;
4. **adapt**: the base recogniser's last layer is trained again on its frozen features of a
   class-balanced mix of base training data (replay, ``models/weights/personal-base``) and every
   character this profile was taught. It is promoted only if it reads the base test sample no worse
   than the base model (by ``MAX_GUARD_DROP``) and the taught characters' check variants no worse;
5. **writer**: a small CNN (``build_writer_cnn``) learns "yours" (the taught characters' variants
   and VAE samples) / "standard" (base data of the same characters) / "other" (other characters);
6. **pictures**: PNG figures of every step (``training.lib.teach_pictures``).

The profile's task folder is built aside and swapped in by renames, so a reader never sees a half
written model. ``python -m training.teach --job DIR`` runs one job of the web app's queue
(``web.jobs``); ``flask --app app personal teach`` runs one in the foreground;
``training.evaluate_personal`` measures what it gains on writers it never saw.

TensorFlow (keras, the network builders, the augmentation, ``training.lib.loop``) is imported inside
the functions that train, as in ``training.lib.fine_tuning`` and ``training.lib.writer_classifier``:
a teach worker says it started (step "prepare") before it pays the seconds that import takes.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from models.errors import PreprocessError, ProfileError
from models.files import write_json
from models.loading import load_recognizer
from models.preprocessing import fit_glyph, to_png
from models.profiles import (
    MAX_GUARD_DROP,
    PROFILE_FILE,
    WRITER_CLASSES,
    base_data,
    profile_task_dir,
    read_profile,
    sample_glyph,
    write_profile,
)
from models.protocols import GlyphModel
from models.registry import WEIGHTS_DIR
from models.timestamps import utc_stamp
from training.lib import teach_pictures
from training.lib.fine_tuning import training_mix
from training.lib.folders import swap_folder
from training.lib.writer_classifier import WRITER_EPOCHS, halves, train_writer, writer_threshold

VARIANTS = 120  # the original design's ~100 variants, plus a few to spare for the check set
CHECK_VARIANTS = 40  # variants of another seed: the adapted model must read them no worse than the base
VAE_SAMPLES = 100
VAE_LATENT = 8
VAE_KL_WEIGHT = 0.5  # a beta-VAE: at 1 the 120 variants decode to one blurred mean; at 0.5 samples are sharp and varied
VAE_EPOCHS = 100  # ~380 steps of 32 on 120 variants, about 9 s on 2 cores
HEAD_EPOCHS = 25
HEAD_INTERPOLATE = 0.5  # the personal head = base + this share of the tuning step
STEPS = (  # (name, share of the job's time) for progress and the ETA
    ("prepare", 0.02),
    ("augment", 0.04),
    ("vae", 0.42),
    ("adapt", 0.16),
    ("writer", 0.28),
    ("pictures", 0.08),
)

Progress = Callable[[str, float], None]  # (step name, fraction of the whole job done)


class Steps:
    """Reports progress as each step starts and ends, by the steps' shares of the job."""

    def __init__(self, report: Progress | None):
        self.report = report or (lambda step, fraction: None)
        self.done = 0.0
        self.shares = dict(STEPS)
        self.timings: dict[str, float] = {}

    def start(self, step: str) -> None:
        self.report(step, self.done)

    def within(self, step: str, fraction: float) -> None:
        """Progress inside ``step`` (0-1 of it), for the long steps."""
        self.report(step, min(self.done + self.shares[step] * fraction, 1.0))

    def end(self, step: str) -> None:
        self.done += self.shares[step]
        self.report(step, min(self.done, 1.0))

    def timed(self, step: str, fn):
        """``fn()`` as ``step``: reported as it starts and ends, its seconds kept in ``timings``."""
        t = time.monotonic()
        self.start(step)
        out = fn()
        self.end(step)
        self.timings[step] = round(time.monotonic() - t, 2)
        return out


# ------------------------------------------------------------------------------------------- VAE


def train_vae(
    glyphs: np.ndarray,
    epochs: int = VAE_EPOCHS,
    seed: int = 1,
    latent: int = VAE_LATENT,
    kl_weight: float = VAE_KL_WEIGHT,
    tick: Callable[[float], None] | None = None,
):
    """Train ``build_vae`` on (N, 28, 28) uint8 glyphs; returns (encoder, decoder, loss per epoch).

    Loss per glyph: binary cross-entropy of the 784 pixels (summed) + ``kl_weight`` x the KL
    divergence of the encoder's Gaussian from the unit Gaussian. Same seed, same data: same weights."""
    import keras
    import tensorflow as tf

    from models.architectures import build_vae  # imports TensorFlow: only a training run pays for it

    keras.utils.set_random_seed(seed)
    encoder, decoder = build_vae(latent)
    optimizer = keras.optimizers.Adam(1e-3)
    x = tf.constant(glyphs[..., None])
    target = tf.cast(x, tf.float32) / 255.0
    params = encoder.trainable_weights + decoder.trainable_weights

    @tf.function
    def step(batch, truth, eps):
        with tf.GradientTape() as tape:
            mean, log_var = encoder(batch, training=True)
            z = mean + tf.exp(0.5 * log_var) * eps  # the reparameterisation trick
            ink = decoder(z, training=True)
            recon = tf.reduce_sum(keras.losses.binary_crossentropy(truth, ink, axis=[]), axis=[1, 2, 3])
            kl = -0.5 * tf.reduce_sum(1 + log_var - tf.square(mean) - tf.exp(log_var), axis=1)
            loss = tf.reduce_mean(recon + kl_weight * kl)
        optimizer.apply_gradients(zip(tape.gradient(loss, params), params, strict=True))
        return loss

    rng = np.random.default_rng(seed)
    history = []
    for _ in range(epochs):
        order = rng.permutation(len(glyphs))
        losses = []
        for i in range(0, len(order), 32):
            idx = order[i : i + 32]
            eps = rng.standard_normal((len(idx), latent)).astype(np.float32)
            losses.append(float(step(tf.gather(x, idx), tf.gather(target, idx), eps)))
        history.append(round(float(np.mean(losses)), 3))
        if tick and len(history) % 10 == 0:
            tick(len(history) / epochs)
    return encoder, decoder, history


def vae_samples(encoder, decoder, sample: np.ndarray, variants: np.ndarray, count: int, seed: int) -> np.ndarray:
    """``count`` new glyphs from the latent space around the sample: each is decoded from a point
    drawn from the posterior of a random variant, pulled part of the way towards the sample's mean
    (``z = m + u * (mean_i - m) + std_i * eps``). The decoded ink is sharpened a little (a VAE
    blurs) and goes through the glyph path's last step (``fit_glyph``) like every other glyph."""
    rng = np.random.default_rng(seed)
    centre = encoder(sample[None, ..., None], training=False)[0].numpy()[0]
    mean, log_var = (t.numpy() for t in encoder(variants[..., None], training=False))
    pick = rng.integers(0, len(variants), count * 2)
    pull = rng.uniform(0.3, 1.0, (len(pick), 1))
    eps = rng.standard_normal((len(pick), len(centre)))
    z = (centre + pull * (mean[pick] - centre) + np.exp(0.5 * log_var[pick]) * eps).astype(np.float32)
    inks = np.clip((decoder(z, training=False).numpy()[..., 0] - 0.15) / 0.6, 0.0, 1.0)
    out = []
    for ink in inks:
        try:
            out.append(fit_glyph(ink))
        except PreprocessError:
            continue
        if len(out) == count:
            break
    return np.stack(out)


# --------------------------------------------------------------------------------- adaptation


def features(model, glyphs: np.ndarray) -> np.ndarray:
    """The recogniser's frozen features: the input of its last (``probs``) layer."""
    import keras

    trunk = keras.Model(model.input, model.get_layer("probs").input)
    return np.concatenate(
        [trunk(glyphs[i : i + 512, ..., None], training=False).numpy() for i in range(0, len(glyphs), 512)]
    )


_BASE_FEATURES: dict[tuple[str, str], np.ndarray] = {}


def base_features(model, base_dir: Path, part: str, glyphs: np.ndarray) -> np.ndarray:
    """``features`` of the base data (``part``: replay or guard), kept per base model folder."""
    key = (str(Path(base_dir).resolve()), part)
    if key not in _BASE_FEATURES:
        _BASE_FEATURES[key] = features(model, glyphs)
    return _BASE_FEATURES[key]


def train_head(
    base_kernel: np.ndarray,
    base_bias: np.ndarray,
    feats: np.ndarray,
    ids: np.ndarray,
    epochs: int = HEAD_EPOCHS,
    seed: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """The last layer trained again from the base model's weights on (features, class ids)."""
    import keras

    keras.utils.set_random_seed(seed)
    inp = keras.Input(feats.shape[1:])
    dense = keras.layers.Dense(base_kernel.shape[1], activation="softmax")
    head = keras.Model(inp, dense(inp))
    dense.set_weights([base_kernel, base_bias])
    head.compile(optimizer=keras.optimizers.Adam(3e-4), loss="sparse_categorical_crossentropy")
    head.fit(feats, ids, epochs=epochs, batch_size=64, shuffle=True, verbose=0)
    return tuple(dense.get_weights())


def accuracy_of(kernel: np.ndarray, bias: np.ndarray, feats: np.ndarray, ids: np.ndarray) -> float:
    """Accuracy of a softmax layer on features (the argmax needs no softmax)."""
    return round(float(((feats @ kernel + bias).argmax(1) == ids).mean()), 4) if len(ids) else float("nan")


# ------------------------------------------------------------------------------------------ job


def _taught_sets(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    """What earlier teaches of this task kept: label -> {"sample", "variants", "check", "vae"}."""
    path = folder / "samples.npz"
    if not path.exists():
        return {}
    d = np.load(path)
    labels = sorted({k.split("/")[0] for k in d.files})
    return {lab: {part: d[f"{lab}/{part}"] for part in ("sample", "variants", "check", "vae")} for lab in labels}


@dataclass(frozen=True)
class TeachConfig:
    """How one teach runs; its record keeps it whole (``config``). The app's ``TEACH_OPTIONS`` and a
    queued job's ``options`` name these fields."""

    seed: int = 1  # of the variants, the VAE, the head's training mix and the writer
    variants: int = VARIANTS  # augmented copies of the sample (``one_sample_variants``)
    vae_epochs: int = VAE_EPOCHS  # passes of the VAE over the variants
    writer_epochs: int = WRITER_EPOCHS  # passes of the writer classifier over its three groups
    use_vae: bool = True  # False: augmentation only, no VAE samples (the evaluation's control arm)
    pictures: bool = True  # PNG figures of every step (``training.lib.teach_pictures``)


@dataclass
class Lesson:
    """What a teach works from: the base model and data, and every character the profile was
    taught for this task (earlier teaches' and this one's glyph sets)."""

    task: str
    base: GlyphModel
    base_dir: Path
    label: str  # the character taught now
    taught: dict[str, dict[str, np.ndarray]]  # label -> "sample", "variants", "check", "vae"
    replay_x: np.ndarray  # base training data (``models.profiles.base_data``), mixed into the head's
    replay_y: np.ndarray
    guard_x: np.ndarray  # base test data the adapted model must still read
    guard_y: np.ndarray

    @property
    def ids_of(self) -> dict[str, int]:
        return {lab: self.base.labels.index(lab) for lab in self.taught}

    def glyphs(self, part: str) -> tuple[np.ndarray, np.ndarray]:
        """(glyphs, class ids) of one part (or parts, "variants+vae") of every taught character."""
        parts = part.split("+")
        ids = self.ids_of
        x = [np.concatenate([t[p] for p in parts]) for t in self.taught.values()]
        y = [np.full(len(g), ids[lab]) for g, lab in zip(x, self.taught, strict=True)]
        return np.concatenate(x), np.concatenate(y)


@dataclass
class Vae:
    """The VAE a teach trained on the variants, its loss per epoch and the glyphs it made."""

    encoder: object = None
    decoder: object = None
    loss: list = field(default_factory=list)
    generated: np.ndarray = field(default_factory=lambda: np.zeros((0, 28, 28), np.uint8))


def make_vae(sample: np.ndarray, variants: np.ndarray, config: TeachConfig, steps: Steps) -> Vae:
    """Train the VAE on the variants and decode ``VAE_SAMPLES`` glyphs around the sample (none
    without ``config.use_vae``)."""
    if not config.use_vae:
        return Vae()
    enc, dec, loss = train_vae(variants, config.vae_epochs, config.seed, tick=lambda f: steps.within("vae", 0.9 * f))
    return Vae(enc, dec, loss, vae_samples(enc, dec, sample, variants, VAE_SAMPLES, config.seed))


def adapt(lesson: Lesson, config: TeachConfig):
    """The base model with its last layer trained again on a mix of base data and yours (features
    of the frozen trunk); (model, metrics, promoted, mix). The new head replaces the base one only
    if the guard and the check variants measure no worse."""
    import keras

    model = keras.models.load_model(lesson.base_dir / "model.keras", compile=False)
    # the mix is made of features: the base data's are computed once per base model and process;
    # yours is shuffled, as the mix takes the first of a class's rows when it has more than places
    rng = np.random.default_rng(config.seed)
    yours_x, yours_y = lesson.glyphs("variants+vae")
    order = rng.permutation(len(yours_y))
    replay_f = base_features(model, lesson.base_dir, "replay", lesson.replay_x)
    f, y, mix = training_mix(replay_f, lesson.replay_y, features(model, yours_x[order]), yours_y[order], 0.5, rng)
    kernel0, bias0 = model.get_layer("probs").get_weights()
    tuned = train_head(kernel0, bias0, f, y, seed=config.seed)
    # weight-space ensembling, as retraining does: halfway from the base head to the tuned one keeps
    # the writer's gain and the MNIST test accuracy (plain tuning on 2,000 replay glyphs lost 0.1 point)
    kernel, bias = (
        HEAD_INTERPOLATE * t + (1 - HEAD_INTERPOLATE) * t0 for t, t0 in zip(tuned, (kernel0, bias0), strict=True)
    )

    def compare(f: np.ndarray, y_eval: np.ndarray) -> dict:
        base, personal = accuracy_of(kernel0, bias0, f, y_eval), accuracy_of(kernel, bias, f, y_eval)
        return {"base": base, "personal": personal, "samples": len(y_eval)}

    check_x, check_y = lesson.glyphs("check")
    guard = compare(base_features(model, lesson.base_dir, "guard", lesson.guard_x), lesson.guard_y)
    metrics = {"guard": guard, "check_variants": compare(features(model, check_x), check_y)}
    guard_kept = guard["personal"] >= guard["base"] - MAX_GUARD_DROP
    promoted = guard_kept and metrics["check_variants"]["personal"] >= metrics["check_variants"]["base"]
    if promoted:
        model.get_layer("probs").set_weights([kernel, bias])
    return model, metrics, promoted, mix


def learn_writer(lesson: Lesson, config: TeachConfig, steps: Steps):
    """The writer classifier (yours / standard / other) and its "yours" threshold, measured on
    standard glyphs of the taught characters it did not train on."""
    rng = np.random.default_rng(config.seed)
    yours_x, _ = lesson.glyphs("variants+vae")
    same = np.isin(lesson.replay_y, sorted(lesson.ids_of.values()))
    other_pool = rng.permutation(np.flatnonzero(~same))
    other = lesson.replay_x[other_pool[: 3 * len(yours_x)]]
    standard, standard_cal = halves(lesson.replay_x[same], config.seed)
    writer = train_writer(
        yours_x, standard, other, config.writer_epochs, config.seed, lambda f: steps.within("writer", f)
    )
    return writer, writer_threshold(writer, standard_cal)


def write_folder(
    out: Path,
    current: Path,
    lesson: Lesson,
    model,
    promoted: bool,
    writer,
    yours_threshold: float,
    version: int,
    name: str,
) -> None:
    """The task's new folder beside the current one: both models, every taught glyph set, the
    samples as PNG, and earlier teaches' pictures."""
    from training.lib.loop import save_weights  # imports TensorFlow: only a training run pays for it

    task = lesson.task
    meta = {k: v for k, v in lesson.base.meta.items() if k not in ("metrics", "training", "name", "version")}
    own = {"name": f"{name}-{task}", "version": str(version), "parent": lesson.base.version, "profile": name}
    save_weights(model, out / "model", meta | own | {"promoted": promoted})
    writer_meta = {
        "name": f"{name}-{task}-writer",
        "version": str(version),
        "labels": list(WRITER_CLASSES),
        "profile": name,
        "yours_threshold": yours_threshold,
    }
    save_weights(writer, out / "writer", writer_meta)
    sets = {f"{lab}/{part}": arr for lab, t in lesson.taught.items() for part, arr in t.items()}
    np.savez_compressed(out / "samples.npz", **sets)
    (out / "samples").mkdir()
    for lab, t in lesson.taught.items():
        (out / "samples" / f"{ord(lab)}.png").write_bytes(to_png(t["sample"]))
    if current.exists():  # earlier teaches' pictures stay
        for old in (current / "pictures").glob("*"):
            if old.name != str(ord(lesson.label)):
                shutil.copytree(old, out / "pictures" / old.name)


def draw_pictures(folder: Path, lesson: Lesson, variants: np.ndarray, vae: Vae, model, seed: int) -> list:
    """The figures of this teach (``training.lib.teach_pictures``) in ``folder``."""
    label, ids = lesson.label, lesson.ids_of
    standard = lesson.replay_x[lesson.replay_y == ids[label]][:200]
    other_ids = np.flatnonzero(~np.isin(lesson.replay_y, list(ids.values())))
    other = lesson.replay_x[np.random.default_rng(seed).choice(other_ids, min(300, len(other_ids)), replace=False)]
    sample = lesson.taught[label]["sample"]
    return teach_pictures.draw_all(
        folder, label, sample, variants, vae.generated, vae.encoder, vae.decoder, standard, other, model
    )


def swap_in(profile: Path, current: Path, out: Path, owned: bool) -> None:
    """Replace the task's folder by ``out`` with renames (a reader sees the old or the new, never
    half of either); nothing is left behind when the profile was deleted meanwhile."""
    if owned and not (profile / PROFILE_FILE).exists():
        shutil.rmtree(out, ignore_errors=True)
        raise ProfileError(f"Profile {profile.name!r} was deleted while it was being taught.")
    swap_folder(out, current)


def teach(
    data: bytes,
    task: str,
    label: str,
    profile: Path,
    progress: Progress | None = None,
    config: TeachConfig = TeachConfig(),
    base_dir: Path | None = None,
    weights_dir: Path | None = None,
) -> dict:
    """Teach ``profile`` (a folder) one sample of ``label`` for ``task``; returns the task's record
    (also written to the profile's ``profile.json``). ``base_dir`` is the served base model's folder."""
    started, steps = time.monotonic(), Steps(progress)
    weights_dir = Path(weights_dir or WEIGHTS_DIR)
    profile = Path(profile)
    owned, current = (profile / PROFILE_FILE).exists(), profile_task_dir(profile, task)
    base_dir = Path(base_dir or weights_dir / task)
    lesson, vae = new_lesson(data, task, label, current, config, steps, base_dir, weights_dir)
    model, metrics, promoted, mix = steps.timed("adapt", lambda: adapt(lesson, config))
    writer, yours_threshold = steps.timed("writer", lambda: learn_writer(lesson, config, steps))

    out = current.parent / f".{current.name}.{uuid.uuid4().hex}.tmp"
    version = int(read_profile(profile).get("tasks", {}).get(task, {}).get("version", 0)) + 1
    write_folder(out, current, lesson, model, promoted, writer, yours_threshold, version, profile.name)
    variants = lesson.taught[label]["variants"]
    draw = lambda: draw_pictures(out / "pictures" / str(ord(label)), lesson, variants, vae, model, config.seed)  # noqa: E731
    drawn = steps.timed("pictures", draw) if config.pictures else []
    record = {
        "version": version,
        "promoted": promoted,
        "metrics": metrics,
        "seconds": round(time.monotonic() - started, 1),
    }
    record |= teach_record(lesson, vae, mix, steps, drawn, config) | {"evaluation": held_out_writers(weights_dir, task)}
    write_json(out / "record.json", record)
    swap_in(profile, current, out, owned)
    write_profile(profile, task, record)
    return record


def new_lesson(
    data: bytes,
    task: str,
    label: str,
    current: Path,
    config: TeachConfig,
    steps: Steps,
    base_dir: Path,
    weights_dir: Path,
) -> tuple[Lesson, Vae]:
    """The sample as a glyph, its augmented variants (and check variants) and the VAE's samples,
    beside every set taught to the task before and the task's base data."""
    from training.data.augment import one_sample_variants  # imports TensorFlow: only a training run pays for it

    base = load_recognizer(base_dir, task)
    if label not in base.labels:
        raise ValueError(f"{label!r} is not one of the {task} labels")
    gray, sample = steps.timed("prepare", lambda: sample_glyph(data))
    variants = steps.timed("augment", lambda: one_sample_variants(gray, config.variants, config.seed))
    check = one_sample_variants(gray, CHECK_VARIANTS, config.seed + 1000)
    vae = steps.timed("vae", lambda: make_vae(sample, variants, config, steps))
    taught = _taught_sets(current) | {
        label: {"sample": sample, "variants": variants, "check": check, "vae": vae.generated}
    }
    return Lesson(task, base, base_dir, label, taught, *base_data(task, weights_dir)), vae


def teach_record(lesson: Lesson, vae: Vae, mix: dict, steps: Steps, drawn: list, config: TeachConfig) -> dict:
    """What a teach records beside its version and figures: the base, the labels taught, the
    samples it made, its timings, pictures and config."""
    base, label, made = lesson.base, lesson.label, lesson.taught[lesson.label]
    return {
        "base": {"name": base.name, "version": base.version},
        "labels": sorted(lesson.taught, key=lambda lab: base.labels.index(lab)),
        "last_taught": label,
        "taught_at": utc_stamp(),
        "samples": {
            "variants": len(made["variants"]),
            "vae": len(vae.generated),
            "check_variants": len(made["check"]),
            "mix": mix,
        },
        "vae_loss": vae.loss,
        "timings": steps.timings,
        "pictures": {str(ord(label)): drawn},
        "seed": config.seed,
        "config": asdict(config),
    }


def held_out_writers(weights_dir: Path, task: str) -> dict:
    """What teaching one sample measured on writers it never saw (``training.evaluate_personal``):
    a teach has no other samples of its writer to measure on, so each profile says what to expect.
    The writer classifier's figures come from ``evaluation-writer.json`` when it is there (the run
    with the served "yours" threshold)."""
    folder = Path(weights_dir) / "personal-base"
    out: dict = {}
    for name, keys in (("evaluation.json", None), ("evaluation-writer.json", "writer_")):
        try:
            report = json.loads((folder / name).read_text())
        except (OSError, ValueError):
            continue
        figures = report.get("tasks", {}).get(task, {})
        out |= {k: v for k, v in figures.items() if keys is None or k.startswith(keys)}
        out.setdefault("measured_by", []).append(report.get("command"))
    return out
