"""What a pretraining run depends on: the recipe settings, how the work is laid out, and the identity.

The identity is stored in every state.pt and resume file. A state is only continued by a run
with the same identity: same model build, recipe, schedule and data. How the effective batch is
cut (micro-batch, device count, loader workers, threads) is not part of it, so a chain may move
between machines; see docs/pretraining.md, "Equal however the work is cut", for what that changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medseg.atomic import check_dir_target, check_file_target
from medseg.errors import MedsegError

# Bump when a change to the recipe code changes results, so old states are refused.
RECIPE_VERSION = "2"  # 2: RandAugment rand-m9-mstd0.5-inc1; BatchNorm statistics of several processes combined
# The models whose encoders hold BatchNorm (Swin's use LayerNorm); tests check it against the builds.
BATCHNORM_MODELS = ("unet", "resnet50_attention_unet")
# What a segment writes into its --out folder (the resume file only until it finishes).
ENCODER_FILE, STATE_FILE, RESUME_FILE = "encoder.safetensors", "state.pt", "resume.pt"


@dataclass(frozen=True)
class DataInfo:
    """The prepared ImageNet a run trains on, as far as results depend on it."""

    classes: int
    train_images: int
    val_images: int
    fingerprint: str
    """Hash of the train and val index (paths relative to the raw folder, labels)."""


@dataclass(frozen=True)
class Settings:
    """Settings of one `medseg pretrain` job (the CLI options)."""

    model: str
    scheme: str
    image_size: int
    width: float
    window_size: int
    seed: int
    planned_epochs: int
    """Length of the whole pretraining: the cosine schedule ends here (the last checkpoint)."""
    batch: int
    """Effective batch: images per optimizer update, over all devices and accumulation steps."""
    base_lr: float
    base_lr_batch: int
    """`base_lr` is the learning rate at this batch; the run scales it linearly to `batch`."""
    warmup_epochs: int
    micro_batch: int
    """Images per forward pass on one device (the BatchNorm batch and the mixing group)."""
    workers: int = 0
    threads: int | None = None
    processes: int | None = None
    """Data-parallel processes; None: one per visible GPU (1 on CPU), or torchrun's."""
    resume_minutes: float = 10.0

    @property
    def lr(self) -> float:
        """The peak learning rate: linear scaling of `base_lr` to the effective batch."""
        return self.base_lr * self.batch / self.base_lr_batch

    def check(self) -> None:
        """Refuse settings that cannot describe a schedule."""
        if self.warmup_epochs >= self.planned_epochs:
            raise MedsegError(
                f"warmup of {self.warmup_epochs} epochs does not fit a planned length of "
                f"{self.planned_epochs} epochs; the warmup must end before the last checkpoint"
            )
        if self.scheme == "advanced" and self.micro_batch % 2:
            raise MedsegError(
                f"the advanced recipe mixes each image with its mirror in the micro-batch, so the "
                f"micro-batch must be even, got {self.micro_batch}"
            )
        if self.micro_batch < 2 and self.model in BATCHNORM_MODELS:
            # BatchNorm fails (or learns nothing sensible) on batch statistics of one image.
            raise MedsegError(
                f"micro-batch {self.micro_batch} cannot train the {self.model} encoder: its BatchNorm needs at least "
                "2 images per forward pass, and the micro-batch is what each process passes; use --micro-batch 2 or more"
            )

    def accumulation(self, world_size: int) -> int:
        """Micro-batches per device and update, or a MedsegError when the batch does not divide."""
        per_update = self.micro_batch * world_size
        if self.batch % per_update:
            raise MedsegError(
                f"effective batch {self.batch} is not a multiple of micro-batch {self.micro_batch} x "
                f"{world_size} device(s) = {per_update}; choose a micro-batch that divides "
                f"{self.batch // world_size if self.batch % world_size == 0 else self.batch}"
            )
        return self.batch // per_update

    def identity(self, data: DataInfo) -> dict[str, str]:
        """What a state must match to be continued by this run (strings, for plain comparison)."""
        identity = {
            "recipe_version": RECIPE_VERSION,
            "model": self.model,
            "scheme": self.scheme,
            "image_size": str(self.image_size),
            "width": f"{self.width:g}",
            "seed": str(self.seed),
            "planned_epochs": str(self.planned_epochs),
            "batch": str(self.batch),
            "lr": f"{self.lr:.10g}",
            "warmup_epochs": str(self.warmup_epochs),
            "classes": str(data.classes),
            "train_images": str(data.train_images),
            "data": data.fingerprint,
        }
        if self.model == "swin_unet":
            identity["window_size"] = str(self.window_size)
        return identity


@dataclass(frozen=True)
class Job:
    """One `medseg pretrain` call: settings, the checkpoint to reach, and where everything is."""

    settings: Settings
    epoch: int
    """The checkpoint this segment ends at."""
    start: Path
    """state.pt of the previous checkpoint, or the scratch encoder.safetensors (epoch 0)."""
    data: Path
    """Prepared ImageNet (results/data/imagenet)."""
    out: Path
    """Folder receiving encoder.safetensors and state.pt (and, meanwhile, the resume file)."""
    history: Path
    raw: Path | None = None
    """Where the images are now; None: the raw folder recorded at preparation."""

    def check(self) -> None:
        """Refuse, before any training, settings that cannot train and outputs that cannot be written."""
        self.settings.check()
        check_dir_target(self.out)
        for name in (ENCODER_FILE, STATE_FILE, RESUME_FILE):
            check_file_target(Path(self.out) / name)
        check_file_target(self.history)
        start = Path(self.start).resolve()
        if start.parent == Path(self.out).resolve():
            raise MedsegError(
                f"--out {self.out} is the folder of --start {self.start}: checkpoint {self.epoch} would replace the "
                f"checkpoint it starts from; give checkpoint {self.epoch} its own folder (e.g. .../epoch={self.epoch})"
            )
        if start == Path(self.history).resolve():
            raise MedsegError(f"--history {self.history} is the --start file; give the history its own file")
