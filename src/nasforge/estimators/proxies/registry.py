"""Every zero-cost proxy by name: what it is, where it comes from, how many images it sees.

Scores are always returned so that **higher = better** (jacob_cov and grasp are defined with
their sign already chosen that way; none here needs flipping). Proxies in one ``group`` are
computed from one shared pass (`ZeroCostProxy` runs each group at most once per cell).

Default batch sizes are chosen for cost (the issue's budget: all proxies together about 2 s
per NB201 C=16 N=5 cell on one CPU core); the papers' choices, where larger, are in each
proxy's note. ``batch_size=None``: no data (params, flops, l2_norm); synflow always uses one
all-ones image; zen uses Gaussian inputs, not the minibatch.
"""

from __future__ import annotations

from dataclasses import dataclass

from nasforge.estimators.proxies.combined import AZ_COMPONENTS

AZ = "Lee & Ham 2024, AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture Search"
ABDELFATTAH = "Abdelfattah et al. 2021, Zero-Cost Proxies for Lightweight NAS"


@dataclass(frozen=True)
class ProxySpec:
    """One proxy: ``group`` = the pass that computes it; ``relative``: a rank combination,
    defined only over a population of architectures (see ``combined.py``)."""

    name: str
    citation: str
    batch_size: int | None
    group: str
    note: str = ""
    higher_is_better: bool = True
    relative: bool = False


def _spec(name: str, citation: str, batch: int | None, group: str, note: str = "") -> ProxySpec:
    return ProxySpec(name, citation, batch, group, note)


PROXIES: dict[str, ProxySpec] = {
    spec.name: spec
    for spec in (
        _spec("grad_norm", ABDELFATTAH, 8, "gradient", "paper: 64 images; here 2 parts of 4"),
        _spec("snip", f"Lee et al. 2019, SNIP; {ABDELFATTAH}", 8, "gradient", "paper: 64"),
        _spec(
            "fisher", f"Turner et al. 2020, BlockSwap; {ABDELFATTAH}", 8, "gradient", "paper: 64"
        ),
        _spec(
            "zico",
            "Li et al. 2023, ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on Gradients",
            8,
            "gradient",
            "paper: 2 batches of 64; here 2 parts of 4",
        ),
        _spec(
            "grasp",
            f"Wang et al. 2020, GraSP; {ABDELFATTAH}",
            8,
            "gradient",
            "the first of the 2 parts (4 images); paper: 64",
        ),
        _spec("synflow", f"Tanaka et al. 2020, SynFlow; {ABDELFATTAH}", 1, "synflow"),
        _spec(
            "jacob_cov",
            f"Mellor et al. 2020 (arXiv v1 of NAS without training); {ABDELFATTAH}",
            8,
            "jacobian",
            "paper: 64; 8 here for cost",
        ),
        _spec(
            "naswot",
            "Mellor et al. 2021, Neural Architecture Search without Training",
            32,
            "activation",
            "paper: 128",
        ),
        _spec(
            "meco",
            "Jiang et al. 2023, MeCo: Zero-Shot NAS with One Data and Single Forward Pass",
            1,
            "meco",
            "one image, its own forward pass, as in the paper (MeCo: one data sample)",
        ),
        _spec(
            "swap",
            "Peng et al. 2024, SWAP-NAS: Sample-Wise Activation Patterns for Ultra-fast NAS",
            32,
            "activation",
            "with its parameter regulariser (our mu, sigma)",
        ),
        _spec("az_expressivity", AZ, 32, "activation"),
        _spec("az_progressivity", AZ, 32, "activation"),
        _spec(
            "zen",
            "Lin et al. 2021, Zen-NAS: A Zero-Shot NAS for High-Performance Image Recognition",
            8,
            "zen",
            "Gaussian inputs; paper: 32 repeats of 64",
        ),
        _spec("params", "trainable parameters (baseline)", None, "baseline"),
        _spec(
            "flops", "multiply-accumulates of one image, count_macs (baseline)", None, "baseline"
        ),
        _spec("l2_norm", ABDELFATTAH, None, "baseline"),
    )
}
PROXIES["az_nas"] = ProxySpec(
    "az_nas",
    AZ,
    32,
    "combined",
    "rank combination of az_expressivity, az_progressivity, jacob_cov, flops over the scored set",
    relative=True,
)

#: The components each relative proxy is combined from.
COMPONENTS: dict[str, tuple[str, ...]] = {"az_nas": AZ_COMPONENTS}
