"""Size and count settings of the synthetic datasets. Ranges are inclusive (low, high)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """How many images of which size each synthetic dataset gets."""

    acdc_train: int
    """Training patients, written as patient001 .. patientNNN."""
    acdc_test: int
    """Testing patients, written as patient101 onwards."""
    acdc_side: tuple[int, int]
    """In-plane size range in pixels; X and Y are drawn independently per patient."""
    acdc_slices: tuple[int, int]
    """Number of short-axis slices Z per patient."""
    acdc_frames: tuple[int, int]
    """Number of cardiac frames T per patient (NbFrame)."""
    covid_per_split: tuple[int, int, int]
    """COVID-19 images in Train, Val, Test."""
    covid_other_per_split: int
    """Non-COVID images and Normal images, each, per split."""
    covid_size: int
    """Side of the square X-ray images."""
    idrid_train: int
    """Training fundus images IDRiD_01 onwards."""
    idrid_test: int
    """Testing fundus images IDRiD_55 onwards."""
    idrid_size: tuple[int, int]
    """(width, height) of the fundus images, 3:2 like the real 4288x2848."""
    imagenet_classes: int
    """Number of synsets."""
    imagenet_train_per_class: int
    """Training images per synset."""
    imagenet_val_per_class: int
    """Validation images per synset."""
    imagenet_side: tuple[int, int]
    """Range of widths and heights, drawn independently per image."""

    def describe(self) -> str:
        """One line summary for help texts."""
        covid_train, covid_val, covid_test = self.covid_per_split
        return (
            f"ACDC {self.acdc_train}+{self.acdc_test} patients, in-plane "
            f"{self.acdc_side[0]}-{self.acdc_side[1]} px, {self.acdc_slices[0]}-"
            f"{self.acdc_slices[1]} slices, {self.acdc_frames[0]}-{self.acdc_frames[1]} "
            f"frames; COVID-QU-Ex COVID-19 {covid_train}/{covid_val}/{covid_test} "
            f"(Train/Val/Test), Non-COVID and Normal {self.covid_other_per_split} per split, "
            f"{self.covid_size}x{self.covid_size}; IDRiD {self.idrid_train}+{self.idrid_test} "
            f"images {self.idrid_size[0]}x{self.idrid_size[1]}; ImageNet "
            f"{self.imagenet_classes} classes x {self.imagenet_train_per_class} train + "
            f"{self.imagenet_val_per_class} val, sides {self.imagenet_side[0]}-"
            f"{self.imagenet_side[1]} px"
        )


TINY = Preset(
    acdc_train=3,
    acdc_test=2,
    acdc_side=(32, 48),
    acdc_slices=(4, 6),
    acdc_frames=(6, 8),
    covid_per_split=(4, 2, 3),
    covid_other_per_split=1,
    covid_size=48,
    idrid_train=2,
    idrid_test=1,
    idrid_size=(150, 100),
    imagenet_classes=4,
    imagenet_train_per_class=6,
    imagenet_val_per_class=3,
    imagenet_side=(32, 56),
)

DEMO = Preset(
    acdc_train=4,
    acdc_test=2,
    acdc_side=(48, 80),
    acdc_slices=(6, 10),
    acdc_frames=(10, 16),
    covid_per_split=(16, 4, 8),
    covid_other_per_split=2,
    covid_size=96,
    idrid_train=2,
    idrid_test=1,
    idrid_size=(300, 200),
    imagenet_classes=10,
    imagenet_train_per_class=40,
    imagenet_val_per_class=10,
    imagenet_side=(48, 96),
)
