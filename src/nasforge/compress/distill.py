"""Knowledge distillation: train a smaller network of the space (the student) on what the run's
best network (the teacher) predicts, so that it gets closer to the teacher's accuracy than
training on the labels alone would take it.

`kd_loss` is Hinton's soft-target loss; `distill` trains the student with it through
`finetune.fit` (its loss hook replaces the cross-entropy), optionally adding FitNets-style
matching of the penultimate features. The teacher is only evaluated: frozen, in eval mode, its
weights and mode as they were afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from nasforge.compress.finetune import EpochProgress, FitResult, fit
from nasforge.errors import ConfigError
from nasforge.nn.profile import device_of


def _check_settings(temperature: float, alpha: float, feature_weight: float = 0.0) -> None:
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature)) or not (
        temperature > 0
    ):
        raise ConfigError(f"distillation temperature must be a number > 0, got {temperature!r}")
    if not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"distillation alpha must be a number from 0 to 1, got {alpha!r}")
    if not (isinstance(feature_weight, (int, float)) and math.isfinite(feature_weight)) or not (
        feature_weight >= 0
    ):
        raise ConfigError(f"feature_weight must be a number >= 0, got {feature_weight!r}")


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float = 4.0,
    alpha: float = 0.9,
) -> torch.Tensor:
    """``alpha * T² * KL(softmax(t/T) || softmax(s/T)) + (1 - alpha) * CE(s, y)``, averaged
    over the batch; no gradient flows into the teacher's logits.

    Hinton, Vinyals and Dean, "Distilling the Knowledge in a Neural Network" (NIPS 2014 Deep
    Learning Workshop, arXiv:1503.02531): the student matches the teacher's class
    probabilities softened by temperature ``T``, which carry how alike the classes are; the
    soft term is multiplied by ``T²`` because its gradients shrink as ``1/T²``, so that ``alpha``
    weighs the two terms the same way at any temperature. The paper writes the soft term as the
    cross-entropy to the soft targets; the KL divergence used here differs from it by the
    teacher's entropy, a constant with no gradient, so training is the same and a student that
    matches the teacher exactly has a soft term of zero."""
    _check_settings(temperature, alpha)
    if student_logits.shape != teacher_logits.shape:
        raise ConfigError(
            f"student and teacher logits must have the same shape, got "
            f"{tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}"
        )
    t = float(temperature)
    soft = F.kl_div(
        F.log_softmax(student_logits / t, dim=1),
        F.log_softmax(teacher_logits.detach() / t, dim=1),
        reduction="batchmean",
        log_target=True,
    )
    hard = F.cross_entropy(student_logits, labels) if alpha < 1 else soft.new_zeros(())
    return alpha * t * t * soft + (1.0 - alpha) * hard


def last_linear(model: nn.Module) -> nn.Linear:
    """The last ``nn.Linear`` of ``model`` in module order: normally the classifier, whose input
    is the penultimate features that feature matching compares."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError(
            f"feature matching needs an nn.Linear classifier in {type(model).__name__}; it has "
            "none (use feature_weight=0)"
        )
    return linears[-1]


class _Features:
    """The input of a layer at its last call (a forward pre-hook), flattened per example."""

    def __init__(self, layer: nn.Module):
        self.value: torch.Tensor | None = None
        self.handle = layer.register_forward_pre_hook(self._keep)

    def _keep(self, module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        self.value = args[0].flatten(1)

    def take(self) -> torch.Tensor:
        value, self.value = self.value, None
        if value is None:
            raise ConfigError("feature matching: the classifier was not called in forward")
        return value


@contextmanager
def _frozen(teacher: nn.Module) -> Iterator[nn.Module]:
    """The teacher in eval mode for a block, its mode restored afterwards."""
    was_training = teacher.training
    teacher.eval()
    try:
        yield teacher
    finally:
        teacher.train(was_training)


@torch.no_grad()
def _probe(teacher: nn.Module, student: nn.Module, image: torch.Tensor) -> None:
    """Student and teacher must predict the same classes: checked on one image first, both in
    eval mode (a batch of one must not move batch-norm statistics)."""
    was_training = student.training
    student.eval()
    try:
        t = teacher(image.to(device_of(teacher)))
        s = student(image.to(device_of(student)))
    finally:
        student.train(was_training)
    if t.shape != s.shape:
        raise ConfigError(
            f"the student's output {tuple(s.shape[1:])} differs from the teacher's "
            f"{tuple(t.shape[1:])}; distil between networks with the same classes"
        )


def _regressor(width_in: int, width_out: int, seed: int) -> nn.Linear:
    """The hint's linear map, initialised from ``seed`` (as ``nn.Linear`` initialises, from
    its own generator), so that a distillation is repeatable without touching torch's global
    random state."""
    regressor = nn.Linear(width_in, width_out, bias=False)
    bound = 1.0 / math.sqrt(width_in)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        regressor.weight.copy_(
            torch.rand(regressor.weight.shape, generator=generator) * 2 * bound - bound
        )
    return regressor


def distill(
    teacher: nn.Module,
    student: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int,
    temperature: float = 4.0,
    alpha: float = 0.9,
    feature_weight: float = 0.0,
    lr: float = 0.05,
    batch_size: int = 64,
    seed: int = 0,
    threads: int | None = None,
    progress: EpochProgress | None = None,
) -> FitResult:
    """Train ``student`` in place for ``epochs`` on ``images``/``labels`` with `kd_loss`
    against the frozen ``teacher`` (evaluated on each batch, in eval mode, without gradient),
    by `finetune.fit`'s SGD recipe; returns what `fit` returns.

    With ``feature_weight > 0``, ``feature_weight`` times the mean squared error between the
    teacher's penultimate features (the input of its last ``nn.Linear``) and the student's,
    mapped to the teacher's width by a linear regressor trained with the student, is added:
    the hint of FitNets (Romero, Ballas, Kahou, Chassang, Gatta and Bengio, "FitNets: Hints for
    Thin Deep Nets", ICLR 2015). Departures: FitNets takes the hint from a middle layer, maps
    it with a convolutional regressor, and trains the student's lower half on it alone before a
    second stage of distillation; here the hint is the pooled features just before the
    classifier (they exist in every network of every space, whatever its depth), the
    regressor is linear (initialised from ``seed``), and both terms train together in one
    stage. The regressor is discarded afterwards: it serves training only. The hint is not
    normalised, so a useful ``feature_weight`` depends on the teacher's feature scale: for a
    small CNN whose features have a mean square of about 5, 3 made the student's features
    clearly more predictive of the teacher's and 1 hardly did."""
    _check_settings(temperature, alpha, feature_weight)
    if len(images) == 0 or len(images) != len(labels):
        raise ConfigError(
            f"distillation needs as many labels as images (>= 1), got {len(images)} images and "
            f"{len(labels)} labels"
        )
    with _frozen(teacher):
        _probe(teacher, student, images[:1])
    teacher_device = device_of(teacher)
    hooks: list[_Features] = []
    regressor: nn.Module | None = None
    parameters = None
    if feature_weight > 0:
        classifiers = (last_linear(student), last_linear(teacher))  # both checked first
        hooks = [_Features(classifier) for classifier in classifiers]
        widths = (classifiers[0].in_features, classifiers[1].in_features)
        regressor = _regressor(*widths, seed=seed).to(device_of(student))
        parameters = [p for p in student.parameters() if p.requires_grad]
        parameters += list(regressor.parameters())

    def loss(
        model: nn.Module, x: torch.Tensor, y: torch.Tensor, logits: torch.Tensor
    ) -> torch.Tensor:
        with torch.no_grad():
            teacher_logits = teacher(x.to(teacher_device)).to(logits.device)
        total = kd_loss(logits, teacher_logits, y, temperature, alpha)
        if regressor is not None:
            student_features, teacher_features = hooks[0].take(), hooks[1].take()
            hint = F.mse_loss(regressor(student_features), teacher_features.to(logits.device))
            total = total + feature_weight * hint
        return total

    try:
        with _frozen(teacher):
            return fit(
                student,
                images,
                labels,
                epochs=epochs,
                lr=lr,
                batch_size=batch_size,
                seed=seed,
                threads=threads,
                extra=loss,
                replace_ce=True,
                parameters=parameters,
                progress=progress,
            )
    finally:
        for hook in hooks:
            hook.handle.remove()
