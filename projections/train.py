"""Training of the projection heads on paired features, with validation-only model selection.

Everything is seeded through one ``torch.Generator`` (initialisation and batch order), so
the same inputs and seed give the same model. The checkpoint kept is the epoch with the best
validation score (mean of audio->image and image->audio top-1 retrieval on the validation
pairs); with ``patience`` set, training stops once that score has not improved for that many
epochs. Test and unseen data never enter this module.
"""
from __future__ import annotations

import copy
import dataclasses
import itertools
from dataclasses import dataclass, field

import numpy as np
import torch

from rram_lsm.errors import ConfigError

from . import functional as Fn
from .heads import HEAD_KINDS, DualEncoder

BASE_FEATURE_KINDS = ("counts", "windowed", "span", "input", "input_span")
"""The LSM feature kinds (``lsm.features``): spikes per neuron over the whole sample, in
equal time windows, or in windows of the sample's active input span; and the same two
for the reservoir's input rasters (reservoir bypassed, an ablation)."""
FEATURE_KINDS = tuple("+".join(c) for n in range(1, len(BASE_FEATURE_KINDS) + 1)
                      for c in itertools.combinations(BASE_FEATURE_KINDS, n))
"""Feature kinds a recipe can run on (``MethodConfig.features``): any base kinds side by
side, joined by ``+`` in the order of :data:`BASE_FEATURE_KINDS`."""
FEATURE_TRANSFORMS = ("none", "sqrt")
"""Element-wise transforms of the features (``MethodConfig.feature_transform``)."""

__all__ = ["BASE_FEATURE_KINDS", "FEATURE_KINDS", "FEATURE_TRANSFORMS", "transform_features",
           "MethodConfig", "METHODS", "get_method", "TrainResult", "train_heads", "method_loss",
           "needs_similarity", "FeatureSimilarity"]


@dataclass(frozen=True)
class MethodConfig:
    """A training recipe for the two heads, plus how few-shot prototypes are formed."""

    name: str = "custom"
    """Label used in results."""
    head: str = "fc_gelu"
    """Head kind: ``linear``, ``fc_gelu`` (paper) or ``mlp``."""
    dim: int = 64
    """Embedding dimension."""
    hidden: int = 256
    """Hidden width of the ``mlp`` head (ignored otherwise)."""
    standardize: bool = False
    """Standardise each feature with the training-set mean and std before the head."""
    scale_floor: float = 0.0
    """Standardisation (the heads' inputs and few-shot's raw features) divides no feature
    by less than this fraction of the median feature std of the training samples, in
    [0, 1) (:func:`projections.heads.feature_scale`): a feature that never varied on the
    seen classes cannot blow up an unseen sample. 0: the absolute floor 1e-6 of recipes
    before round 14."""
    temperature: float = 1.0
    """Softmax temperature of the contrastive losses (initial value if learned)."""
    learn_temperature: bool = False
    """Learn log-temperature jointly with the heads (CLIP)."""
    clip_weight: float = 1.0
    """Weight of the symmetric CLIP/InfoNCE loss."""
    supcon_weight: float = 0.0
    """Weight of the cross-modal supervised-contrastive loss (label-aware)."""
    joint_weight: float = 0.0
    """Weight of supervised-contrastive over both modalities together (joint SupCon)."""
    proto_weight: float = 0.0
    """Weight of the cross-modal prototypical loss."""
    align_weight: float = 0.0
    """Weight of the Wang & Isola alignment term."""
    uniform_weight: float = 0.0
    """Weight of the Wang & Isola uniformity term (applied to each modality)."""
    cwcl_weight: float = 0.0
    """Weight of CWCL (intra-modal similarity of frozen features as soft targets)."""
    structure_weight: float = 0.0
    """Weight of the structure-preserving regulariser (applied to each modality)."""
    structure_temperature: float = 0.1
    """Temperature of the neighbourhood distributions in the structure regulariser."""
    epochs: int = 100
    """Maximum training epochs."""
    lr: float = 1e-3
    """Adam learning rate."""
    weight_decay: float = 0.0
    """Adam weight decay (L2)."""
    batch_size: int = 128
    """Pairs per batch."""
    patience: int | None = None
    """Stop after this many epochs without validation improvement (None: run all)."""
    fewshot_sources: str = "both"
    """Few-shot prototypes, in the learned embedding, from the support of ``image``,
    ``audio``, ``both`` modalities, or ``own`` (each query's own modality)."""
    fewshot_raw_weight: float = 0.0
    """Few-shot score = (1 - w) * cosine in the embedding + w * cosine to same-modality
    prototypes of raw features, standardised (or whitened, see ``fewshot_whiten``)
    (0: embedding only, 1: raw only)."""
    fewshot_whiten: float | None = None
    """None: the raw features of few-shot scoring are standardised. A shrinkage in [0, 1]:
    they are whitened with the within-class covariance of the seen classes' training
    samples (:func:`projections.metric.within_class_whitener`). Learned embeddings are
    never whitened, so this needs ``fewshot_raw_weight`` > 0 or an untrained method."""
    fewshot_transductive: int = 0
    """Soft k-means steps refining the few-shot prototypes with the episode's unlabelled
    queries (transductive few-shot, Ren et al. 2018; :func:`projections.evaluate.
    fewshot_accuracies`); 0: every query is classified on its own (inductive)."""
    fewshot_transductive_temperature: float = 0.05
    """Temperature (on cosine scores, unitless) of the query posteriors in those steps."""
    fewshot_em_steps: int = 0
    """EM steps of a tied-covariance Gaussian mixture over the episode (support labelled,
    queries not) that then classify the queries, in the top ``fewshot_em_dims``
    principal directions of the unseen pool (:mod:`projections.episode_em`); 0: off.
    Needs ``fewshot_raw_weight`` 1."""
    fewshot_em_dims: int = 16
    """Principal directions of the unseen pool that EM works in (the default's: 16)."""
    fewshot_em_shrinkage: float = 0.2
    """Shrinkage of the mixture's covariance towards a scaled identity, in (0, 1] (the
    default's: 0.2)."""
    fewshot_speaker_centring: float | None = None
    """None: off. A shrinkage in (0, 1]: before whitening, each unseen audio utterance has
    its speaker's mean over the unseen pool taken off, the speakers predicted by a linear
    discriminant fitted on the seen classes' training utterances with this shrinkage
    (:mod:`projections.speakers`). Needs data that name each utterance's speaker
    (``PairedFeatures.audio_speakers``, at least two speakers in training); otherwise it
    does nothing. Only the raw features few-shot reads are centred, not a learned
    embedding mixed in with ``fewshot_raw_weight`` < 1."""
    fewshot_features: str | None = None
    """Feature kind of the raw features few-shot scoring compares (see ``features``);
    None: the heads' ``features``. Lets the few-shot metric read time-resolved features
    while the heads keep theirs."""
    fewshot_transform: str | None = None
    """Element-wise transform of those raw features (see ``feature_transform``); None: the
    heads' ``feature_transform``."""
    trained: bool = True
    """False for the no-training raw-feature baseline (embeddings = standardised features)."""
    features: str = "counts"
    """LSM feature kind the recipe runs on: ``counts`` (spikes per neuron, the paper's),
    ``windowed`` (spikes per neuron per time window), ``input`` (the input rasters' rate
    per input row, reservoir bypassed: an ablation) or two of them side by side
    (``counts+windowed``, ``counts+input``); ``span`` and ``input_span`` count in windows
    of each sample's active input span (:data:`BASE_FEATURE_KINDS`);
    :func:`projections.encode_pair` encodes it (5 windows unless told otherwise)."""
    feature_transform: str = "none"
    """Applied to every feature before standardisation: ``none`` or ``sqrt`` (signed
    square root, a variance-stabilising power transform for counts)."""
    ensemble: int = 1
    """Pairs of heads trained with different seeds; their L2-normalised embeddings are
    concatenated (scaled by 1/sqrt(n)), so similarities are the mean over members."""

    def __post_init__(self):
        if self.head not in HEAD_KINDS:
            raise ConfigError(f"unknown head {self.head!r}; expected one of {HEAD_KINDS}")
        if self.fewshot_sources not in ("image", "audio", "both", "own"):
            raise ConfigError("fewshot_sources must be 'image', 'audio', 'both' or 'own', "
                              f"got {self.fewshot_sources!r}")
        if not 0.0 <= self.fewshot_raw_weight <= 1.0:
            raise ConfigError(f"fewshot_raw_weight must be in [0, 1], got "
                              f"{self.fewshot_raw_weight}")
        if self.fewshot_whiten is not None and not 0.0 <= self.fewshot_whiten <= 1.0:
            raise ConfigError(f"fewshot_whiten must be None or in [0, 1], got "
                              f"{self.fewshot_whiten}")
        if self.fewshot_whiten is not None and self.trained and self.fewshot_raw_weight == 0:
            raise ConfigError("fewshot_whiten acts on the raw features only: give "
                              "fewshot_raw_weight > 0 (or no training)")
        if int(self.fewshot_transductive) < 0 or not self.fewshot_transductive_temperature > 0:
            raise ConfigError("fewshot_transductive must be >= 0 and its temperature > 0, "
                              f"got {self.fewshot_transductive} and "
                              f"{self.fewshot_transductive_temperature}")
        if int(self.fewshot_em_steps) != self.fewshot_em_steps or self.fewshot_em_steps < 0 \
                or (self.fewshot_em_steps and (
                    self.fewshot_raw_weight != 1.0 or int(self.fewshot_em_dims) < 1
                    or not 0.0 < self.fewshot_em_shrinkage <= 1.0)):
            raise ConfigError("fewshot_em_steps must be a whole number >= 0; EM needs "
                              "fewshot_raw_weight 1, fewshot_em_dims >= 1 and "
                              "fewshot_em_shrinkage in (0, 1] "
                              "(give fewshot_em_steps=0 to mix in the learned space), got "
                              f"{self.fewshot_em_steps}, {self.fewshot_raw_weight}, "
                              f"{self.fewshot_em_dims}, {self.fewshot_em_shrinkage}")
        if self.fewshot_speaker_centring is not None and \
                not 0.0 < self.fewshot_speaker_centring <= 1.0:
            raise ConfigError(f"fewshot_speaker_centring must be None or in (0, 1], got "
                              f"{self.fewshot_speaker_centring}")
        if self.features not in FEATURE_KINDS:
            raise ConfigError(f"features must be one of {FEATURE_KINDS}, got "
                              f"{self.features!r}")
        if self.feature_transform not in FEATURE_TRANSFORMS:
            raise ConfigError(f"feature_transform must be one of {FEATURE_TRANSFORMS}, got "
                              f"{self.feature_transform!r}")
        if self.fewshot_features is not None and self.fewshot_features not in FEATURE_KINDS:
            raise ConfigError(f"fewshot_features must be None or one of FEATURE_KINDS, got "
                              f"{self.fewshot_features!r}")
        if self.fewshot_transform is not None and \
                self.fewshot_transform not in FEATURE_TRANSFORMS:
            raise ConfigError(f"fewshot_transform must be None or one of "
                              f"{FEATURE_TRANSFORMS}, got {self.fewshot_transform!r}")
        if not 0.0 <= self.scale_floor < 1.0:
            raise ConfigError(f"scale_floor must be in [0, 1), got {self.scale_floor}")
        if self.ensemble < 1:
            raise ConfigError(f"ensemble must be >= 1, got {self.ensemble}")
        if self.epochs < 1 or self.batch_size < 2 or self.lr <= 0 or self.temperature <= 0:
            raise ConfigError("epochs >= 1, batch_size >= 2, lr > 0 and temperature > 0 "
                              f"are required (got {self.epochs}, {self.batch_size}, "
                              f"{self.lr}, {self.temperature})")

    @property
    def fewshot_kind(self) -> str:
        """The feature kind few-shot's raw metric reads."""
        return self.fewshot_features or self.features

    @property
    def fewshot_feature_transform(self) -> str:
        """The transform of few-shot's raw features."""
        return self.fewshot_transform or self.feature_transform

    @property
    def encoded_kind(self) -> str:
        """The kind to encode for this recipe: its heads' and its few-shot kinds joined."""
        parts = set(self.features.split("+")) | set(self.fewshot_kind.split("+"))
        return "+".join(k for k in BASE_FEATURE_KINDS if k in parts)

    def fewshot_twin(self, name: str | None = None) -> "MethodConfig":
        """The untrained recipe scoring few-shot exactly as this one: with
        ``fewshot_raw_weight`` 1 the heads never enter few-shot, so its few-shot figures
        are this recipe's bit for bit, without training (selection rounds, ablations)."""
        if self.fewshot_raw_weight != 1.0:
            raise ConfigError(f"{self.name!r} mixes its learned space into few-shot "
                              f"(fewshot_raw_weight {self.fewshot_raw_weight}); it has no "
                              "untrained twin")
        return MethodConfig(
            name=name or f"{self.name}_fewshot_twin", trained=False,
            features=self.fewshot_kind, feature_transform=self.fewshot_feature_transform,
            fewshot_sources=self.fewshot_sources, fewshot_raw_weight=1.0,
            fewshot_whiten=self.fewshot_whiten, fewshot_transductive=self.fewshot_transductive,
            fewshot_transductive_temperature=self.fewshot_transductive_temperature,
            fewshot_em_steps=self.fewshot_em_steps, fewshot_em_dims=self.fewshot_em_dims,
            fewshot_em_shrinkage=self.fewshot_em_shrinkage,
            fewshot_speaker_centring=self.fewshot_speaker_centring,
            scale_floor=self.scale_floor)

    def replace(self, **changes) -> "MethodConfig":
        """A copy with some fields changed; unknown names raise ConfigError."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown method fields {sorted(unknown)}")
        return dataclasses.replace(self, **changes)


METHODS: dict[str, MethodConfig] = {
    # The paper's recipe: one FC layer + GELU per modality, dim 64, plain CLIP, T = 1.0,
    # Adam 1e-3, 100 epochs (here with validation checkpoint selection).
    "paper": MethodConfig(name="paper", fewshot_sources="image"),
    # Prototypical network on the same features: prototypes of the other modality,
    # L2-normalised embeddings (Euclidean on the sphere), episodic in every batch.
    "protonet": MethodConfig(name="protonet", head="linear", clip_weight=0.0,
                             proto_weight=1.0, temperature=0.1, standardize=True,
                             fewshot_sources="image"),
    # Our default, chosen on seen-class validation data only (projections.selection, see
    # docs/zeroshot.md): the readout sees the reservoir's spike counts and its input rates
    # (counts+input); heads trained with label-aware cross-modal contrast plus the paper's
    # CLIP term (weight 1) at T = 0.2 (round 11: validation's zero-shot choice), feature
    # standardisation and the structure-preserving term; they stop after 10 epochs
    # without a better validation score (round 8). Few-shot does not read
    # the heads: prototypes live in the raw reservoir counts beside the input's envelope in
    # 5 windows of each utterance's active span (counts+input_span, signed square root;
    # rounds 9 and 11), whitened by the seen classes' within-class covariance (shrinkage
    # 0.9), refined by 3 soft k-means steps over the episode's unlabelled queries
    # (transductive, T = 0.05; round 6), then classified by 10 EM steps of a
    # tied-covariance mixture in the unseen pool's top 16 principal directions
    # (covariance shrinkage 0.2; round 13). Heads and few-shot standardise with divisors
    # of at least 0.3 x the median feature std (round 14: a feature silent on every seen
    # training sample no longer becomes an unseen sample's whole vector). Before
    # whitening, each unseen utterance has its speaker's pool mean taken off, the
    # speakers predicted by a discriminant fitted on the seen training utterances
    # (shrinkage 0.2; round 19).
    "default": MethodConfig(name="default", features="counts+input", standardize=True,
                            temperature=0.2, clip_weight=1.0, supcon_weight=1.0,
                            structure_weight=1.0, patience=10, fewshot_sources="own",
                            fewshot_raw_weight=1.0, fewshot_features="counts+input_span",
                            fewshot_transform="sqrt", fewshot_whiten=0.9,
                            fewshot_transductive=3, fewshot_transductive_temperature=0.05,
                            fewshot_em_steps=10, fewshot_em_dims=16,
                            fewshot_em_shrinkage=0.2, fewshot_speaker_centring=0.2,
                            scale_floor=0.3),
    # No training: standardised raw reservoir features, nearest prototype (few-shot only).
    "raw": MethodConfig(name="raw", trained=False, fewshot_sources="audio",
                        fewshot_raw_weight=1.0),
}


def transform_features(values: np.ndarray, transform: str) -> np.ndarray:
    """``values`` after the element-wise ``transform`` (see :data:`FEATURE_TRANSFORMS`)."""
    values = np.asarray(values, np.float32)
    if transform == "none":
        return values
    if transform == "sqrt":
        return np.sign(values) * np.sqrt(np.abs(values))
    raise ConfigError(f"unknown feature transform {transform!r}; expected one of "
                      f"{FEATURE_TRANSFORMS}")


@dataclass
class TrainResult:
    """A trained :class:`DualEncoder` and its learning curves."""

    model: DualEncoder
    """The heads at the selected (best-validation) epoch."""
    best_epoch: int
    """Epoch (1-based) whose weights were kept."""
    curves: dict = field(default_factory=dict)
    """``train_loss``, ``val_loss``, ``val_top1`` per epoch (lists)."""
    train_flops: int = 0
    """Counted floating-point operations of training (forward + backward ~ 3x forward)."""
    wall_s: float = 0.0
    """Wall-clock seconds of training."""

    def embed(self, values: np.ndarray, modality: str) -> np.ndarray:
        """Embed raw features of ``image`` or ``audio`` with the selected heads."""
        head = {"image": self.model.image, "audio": self.model.audio}.get(modality)
        if head is None:
            raise ConfigError(f"modality must be 'image' or 'audio', got {modality!r}")
        with torch.no_grad():
            return head(torch.as_tensor(np.asarray(values, np.float32))).numpy()


def _plain_forward(model: DualEncoder, xi, xa):
    return model(xi, xa)


def _loss(cfg: MethodConfig, model: DualEncoder, xi, xa, y, sim_i, sim_a,
          forward=_plain_forward):
    zi, za = forward(model, xi, xa)
    return method_loss(cfg, zi, za, y, model.temperature, sim_i, sim_a)


def needs_similarity(cfg: MethodConfig) -> bool:
    """Whether the recipe's loss reads the frozen features' cosine similarities."""
    return bool(cfg.cwcl_weight or cfg.structure_weight)


def method_loss(cfg: MethodConfig, zi, za, y, t, sim_i=None, sim_a=None):
    """The recipe's training loss of the embeddings ``zi``/``za`` of one batch of pairs.

    ``sim_i``/``sim_a``: cosine similarities of the batch's frozen image/audio features
    (:func:`projections.functional.cosine_matrix`), read by CWCL and the structure term
    (:func:`needs_similarity`). 2-D batches give a scalar; stacks of R batches
    (``(R, n, d)``, labels ``(R, n)``, temperature ``(R, 1, 1)``) give the ``(R,)``
    losses, slice by slice the same values (:mod:`projections.functional`).
    """
    if needs_similarity(cfg) and (sim_i is None or sim_a is None):
        raise ConfigError(f"method {cfg.name!r} needs the features' cosine similarities")
    total = zi.new_zeros(zi.shape[:-2])
    if cfg.clip_weight:
        total = total + cfg.clip_weight * Fn.clip_loss(za, zi, t)
    if cfg.supcon_weight:
        total = total + cfg.supcon_weight * Fn.supcon_loss(za, zi, y, t)
    if cfg.joint_weight:
        total = total + cfg.joint_weight * Fn.joint_supcon_loss(za, zi, y, t)
    if cfg.proto_weight:
        total = total + cfg.proto_weight * Fn.prototype_loss(za, zi, y, t)
    if cfg.align_weight:
        total = total + cfg.align_weight * Fn.alignment_loss(za, zi)
    if cfg.uniform_weight:
        total = total + cfg.uniform_weight * 0.5 * (Fn.uniformity_loss(za)
                                                    + Fn.uniformity_loss(zi))
    if cfg.cwcl_weight:
        total = total + cfg.cwcl_weight * Fn.cwcl_loss(za, zi, None, None, t,
                                                       xa_similarity=sim_a,
                                                       xb_similarity=sim_i)
    if cfg.structure_weight:
        s = Fn.structure_loss(za, None, cfg.structure_temperature, x_similarity=sim_a) + \
            Fn.structure_loss(zi, None, cfg.structure_temperature, x_similarity=sim_i)
        total = total + cfg.structure_weight * 0.5 * s
    return total


class FeatureSimilarity:
    """Cosine similarities of frozen features among the samples a run reads.

    CWCL and the structure term compare each batch's frozen features with each other;
    the matrix over the run's train and validation samples is computed once
    (:func:`projections.functional.cosine_matrix`) and each batch reads its block.
    """

    def __init__(self, values: np.ndarray, rows):
        self.rows = np.unique(np.asarray(rows, np.int64))
        """The samples covered (sorted indices into ``values``)."""
        self.gram = Fn.cosine_matrix(torch.as_tensor(
            np.asarray(values, np.float32)[self.rows]))
        """(n, n) cosine similarities of those samples."""
        self.pos = np.full(len(values), -1, np.int64)
        self.pos[self.rows] = np.arange(len(self.rows))

    def positions(self, idx) -> torch.Tensor:
        """Rows of :attr:`gram` of the samples ``idx`` (indices into ``values``)."""
        p = self.pos[np.asarray(idx)]
        if np.any(p < 0):
            raise ConfigError("a batch names samples outside the run's train/val rows")
        return torch.as_tensor(p)

    def batch(self, idx) -> torch.Tensor:
        """The ``(len(idx), len(idx))`` similarities among the samples ``idx``."""
        p = self.positions(idx)
        return self.gram[p[:, None], p[None, :]]


def _val_top1(model: DualEncoder, xi, yi, xa, ya, forward=_plain_forward) -> float:
    """Mean of a->i and i->a nearest-neighbour class-match rate on the validation samples."""
    with torch.no_grad():
        zi, za = forward(model, xi, xa)
        sim = za @ zi.T
        a2i = (yi[sim.argmax(1)] == ya).float().mean()
        i2a = (ya[sim.argmax(0)] == yi).float().mean()
    return float(0.5 * (a2i + i2a))


def train_heads(cfg: MethodConfig, image_values: np.ndarray, audio_values: np.ndarray,
                train_pairs, val_pairs, image_labels, audio_labels, *, seed: int = 0,
                progress: bool = False, forward=None, init: DualEncoder | None = None,
                epochs: int | None = None, prepare=None) -> TrainResult:
    """Train both heads on ``train_pairs`` and select the epoch on ``val_pairs``.

    ``*_values`` are full feature arrays; ``*_pairs`` are ``(image_idx, audio_idx)`` index
    arrays into them (as :meth:`projections.splits.CrossModalSplit.pairs` returns). Only the samples
    those pairs name are ever read.

    Hooks (hardware-aware training, :mod:`projections.analog`): ``forward(model, xi, xa)``
    replaces ``model(xi, xa)`` in the loss and the validation score; ``init`` starts from
    these heads (fine-tuning) instead of a fresh initialisation; ``epochs`` overrides
    ``cfg.epochs``; ``prepare(model, xi_train, xa_train)`` runs once before the first
    epoch (e.g. to fix input ranges on the training rows).
    """
    if not cfg.trained:
        raise ConfigError(f"method {cfg.name!r} has no training step")
    # Threads are the caller's to set (the CLI runs the heads on one: they are tiny, and a
    # thread pool costs more than it saves when other processes share the cores).
    return _train(cfg, image_values, audio_values, train_pairs, val_pairs, image_labels,
                  audio_labels, seed, progress, forward or _plain_forward, init, epochs,
                  prepare)


def _train(cfg, image_values, audio_values, train_pairs, val_pairs, image_labels,
           audio_labels, seed, progress, forward=_plain_forward, init=None, epochs=None,
           prepare=None) -> TrainResult:
    import time

    from tqdm.auto import tqdm

    ti, ta = (np.asarray(a, np.int64) for a in train_pairs)
    vi, va = (np.asarray(a, np.int64) for a in val_pairs)
    if len(ti) < 2 or len(vi) < 1:
        raise ConfigError(f"need at least 2 training pairs and 1 validation pair; got "
                          f"{len(ti)} and {len(vi)}")
    image_labels = np.asarray(image_labels)
    audio_labels = np.asarray(audio_labels)
    if np.any(image_labels[ti] != audio_labels[ta]):
        raise ConfigError("training pairs must join samples of the same class")
    xi_tr = torch.as_tensor(np.asarray(image_values, np.float32)[ti])
    xa_tr = torch.as_tensor(np.asarray(audio_values, np.float32)[ta])
    y_tr = torch.as_tensor(image_labels[ti])
    # validation retrieval runs over the distinct validation samples of each modality
    ui, ua = np.unique(vi), np.unique(va)
    xi_val = torch.as_tensor(np.asarray(image_values, np.float32)[ui])
    xa_val = torch.as_tensor(np.asarray(audio_values, np.float32)[ua])
    yi_val = torch.as_tensor(image_labels[ui])
    ya_val = torch.as_tensor(audio_labels[ua])
    xi_vp = torch.as_tensor(np.asarray(image_values, np.float32)[vi])
    xa_vp = torch.as_tensor(np.asarray(audio_values, np.float32)[va])
    y_vp = torch.as_tensor(image_labels[vi])
    if needs_similarity(cfg):
        sim = (FeatureSimilarity(image_values, np.concatenate([ti, vi])),
               FeatureSimilarity(audio_values, np.concatenate([ta, va])))

        def sims(rows_i, rows_a):
            return sim[0].batch(rows_i), sim[1].batch(rows_a)
    else:
        def sims(rows_i, rows_a):
            return None, None
    sim_vp = sims(vi, va)

    gen = torch.Generator().manual_seed(int(seed))
    model = DualEncoder(xi_tr.shape[1], xa_tr.shape[1], cfg.dim, cfg.head, cfg.hidden,
                        True, cfg.temperature, cfg.learn_temperature, gen)
    if init is not None:
        model.load_state_dict(init.state_dict())
    elif cfg.standardize:
        # unique training samples only, so reused (cycled) samples do not weigh more
        model.image.set_standardisation(
            torch.as_tensor(np.asarray(image_values, np.float32)[np.unique(ti)]),
            cfg.scale_floor)
        model.audio.set_standardisation(
            torch.as_tensor(np.asarray(audio_values, np.float32)[np.unique(ta)]),
            cfg.scale_floor)
    n_epochs = cfg.epochs if epochs is None else int(epochs)
    if n_epochs < 1:
        raise ConfigError(f"epochs must be >= 1, got {epochs}")
    if prepare is not None:
        prepare(model, xi_tr, xa_tr)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    curves = {"train_loss": [], "val_loss": [], "val_top1": []}
    best = (-1.0, 0, copy.deepcopy(model.state_dict()))
    n = len(ti)
    bs = min(cfg.batch_size, n)
    steps = 0
    start = time.perf_counter()
    for epoch in tqdm(range(1, n_epochs + 1), desc=f"train {cfg.name}", disable=not progress,
                      leave=False):
        model.train()
        order = torch.randperm(n, generator=gen)
        total, batches = 0.0, 0
        # drop a last batch of one pair: a one-element batch has no negatives
        for s in range(0, n - 1, bs):
            idx = order[s:s + bs]
            if len(idx) < 2:
                continue
            loss = _loss(cfg, model, xi_tr[idx], xa_tr[idx], y_tr[idx],
                         *sims(ti[idx.numpy()], ta[idx.numpy()]), forward)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
            batches += 1
            steps += len(idx)
        model.eval()
        with torch.no_grad():
            val_loss = float(_loss(cfg, model, xi_vp, xa_vp, y_vp, *sim_vp, forward))
        score = _val_top1(model, xi_val, yi_val, xa_val, ya_val, forward)
        curves["train_loss"].append(total / max(batches, 1))
        curves["val_loss"].append(val_loss)
        curves["val_top1"].append(score)
        if score > best[0]:
            best = (score, epoch, copy.deepcopy(model.state_dict()))
        elif cfg.patience is not None and epoch - best[1] >= cfg.patience:
            break
    wall = time.perf_counter() - start
    model.load_state_dict(best[2])
    model.eval()
    per_sample = model.image.flops_per_sample() + model.audio.flops_per_sample()
    # forward + backward (~2x forward) per sample, plus the batch similarity matrix
    flops = 3 * steps * (per_sample + 2 * bs * cfg.dim)
    return TrainResult(model=model, best_epoch=best[1], curves=curves, train_flops=int(flops),
                       wall_s=wall)
