"""Reading the official SadTalker checkpoints through one explicit key-name table.

Files (release v0.0.2): ``SadTalker_V0.0.2_256.safetensors`` / ``_512.safetensors`` hold
``audio2exp.`` (ExpNet), ``audio2pose.`` (PoseVAE), ``kp_extractor.`` and ``generator.``
(face-vid2vid) and ``face_3drecon.`` (the 3DMM regressor); ``mapping_00229-model.pth.tar``
(70 inputs) and ``mapping_00109-model.pth.tar`` (73 inputs, full mode) are torch pickles whose
``mapping`` entry is MappingNet's state dict. They are read as they are: safetensors directly,
the pickles with ``torch.load(weights_only=True)``.

Loading is strict: every tensor is either mapped onto one of our parameters or buffers (shape
checked) or listed in :data:`TRAINING_ONLY` with the reason; anything else — a key missing, an
unexpected key, a shape mismatch — raises :class:`CheckpointError` naming the file and the
keys. Spectral-normalised weights (``weight_orig``, ``weight_u``, ``weight_v``) are folded into
plain weights, W = W_orig / (u · W_orig v), exactly what torch's spectral norm computes in
evaluation mode. This table is the only place the official names appear.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError
from .expnet import ExpNet
from .facevid2vid import Renderer
from .mapping import MappingNet
from .posevae import PoseVAE
from .recon import CoefficientRegressor

SAFETENSORS_NAME = "SadTalker_V0.0.2_{size}.safetensors"
MAPPING_NAMES = {70: "mapping_00229-model.pth.tar", 73: "mapping_00109-model.pth.tar"}
LEAVES = frozenset({"weight", "bias", "running_mean", "running_var", "num_batches_tracked"})


@dataclass(frozen=True)
class Rule:
    """Official key prefix ↔ our key prefix; ``{i}`` stands for a block index. ``children``
    rename what follows the prefix; without children only a leaf name may follow."""

    official: str
    ours: str
    children: tuple["Rule", ...] = ()


def _rules(*pairs) -> tuple[Rule, ...]:
    return tuple(Rule(*p) for p in pairs)


CONV_BN = _rules(("conv.", "conv."), ("norm.", "bn."))
SPEECH_BLOCK = _rules(("conv_block.0.", "conv."), ("conv_block.1.", "bn."))
PREACT = _rules(("conv_block.0.", "norm1."), ("conv_block.2.", "conv1."), ("conv_block.3.", "norm2."),
                ("conv_block.5.", "conv2."), ("conv_skip.0.", "skip_conv."), ("conv_skip.1.", "skip_norm."))
RES3D = _rules(("norm1.", "bn1."), ("conv1.", "conv1."), ("norm2.", "bn2."), ("conv2.", "conv2."))
SPADE = _rules(("mlp_shared.0.", "shared."), ("mlp_gamma.", "gamma."), ("mlp_beta.", "beta."))
SPADE_BLOCK = (*_rules(("conv_0.", "conv_a."), ("conv_1.", "conv_b."), ("conv_s.", "conv_skip.")),
               Rule("norm_0.", "norm_a.", SPADE), Rule("norm_1.", "norm_b.", SPADE),
               Rule("norm_s.", "norm_skip.", SPADE))
BOTTLENECK = _rules(*[(f"{n}{k}.", f"{n}{k}.") for n in ("conv", "bn") for k in (1, 2, 3)],
                    ("downsample.0.", "project.0."), ("downsample.1.", "project.1."))

_UNET = "audio2pose.netG.decoder.resunet."
_DM = "generator.dense_motion_network."

#: The SadTalker_V0.0.2_{256,512}.safetensors table; our side is :class:`SadTalkerNets`.
SAFETENSORS_TABLE: tuple[Rule, ...] = (
    Rule("audio2exp.audio_encoder.{i}.", "expnet.speech.blocks.{i}.", SPEECH_BLOCK),
    Rule("audio2exp.mapping1.", "expnet.head."),
    Rule("audio2pose.audio_encoder.audio_encoder.{i}.", "posevae.speech.blocks.{i}.", SPEECH_BLOCK),
    *_rules(("audio2pose.netG.decoder.linear_audio.", "posevae.decoder.speech_proj."),
            ("audio2pose.netG.decoder.classbias", "posevae.decoder.style_bias"),
            ("audio2pose.netG.decoder.MLP.L0.", "posevae.decoder.fc1."),
            ("audio2pose.netG.decoder.MLP.L1.", "posevae.decoder.fc2."),
            ("audio2pose.netG.decoder.pose_linear.", "posevae.decoder.out."),
            (_UNET + "input_layer.0.", "posevae.decoder.unet.stem_conv1."),
            (_UNET + "input_layer.1.", "posevae.decoder.unet.stem_norm."),
            (_UNET + "input_layer.3.", "posevae.decoder.unet.stem_conv2."),
            (_UNET + "input_skip.0.", "posevae.decoder.unet.stem_skip."),
            (_UNET + "upsample_{i}.upsample.", "posevae.decoder.unet.up{i}."),
            (_UNET + "output_layer.0.", "posevae.decoder.unet.out.")),
    Rule(_UNET + "residual_conv_1.", "posevae.decoder.unet.down1.", PREACT),
    Rule(_UNET + "residual_conv_2.", "posevae.decoder.unet.down2.", PREACT),
    Rule(_UNET + "bridge.", "posevae.decoder.unet.bridge.", PREACT),
    Rule(_UNET + "up_residual_conv{i}.", "posevae.decoder.unet.merge{i}.", PREACT),
    Rule("kp_extractor.down.weight", "renderer.keypoints.blur.kernel"),
    Rule("kp_extractor.predictor.down_blocks.down{i}.", "renderer.keypoints.down.{i}.", CONV_BN),
    Rule("kp_extractor.predictor.conv.", "renderer.keypoints.lift."),
    Rule("kp_extractor.predictor.up_blocks.up{i}.", "renderer.keypoints.up.{i}.", CONV_BN),
    Rule("kp_extractor.kp.", "renderer.keypoints.heatmap."),
    Rule("generator.first.", "renderer.appearance.first.", CONV_BN),
    Rule("generator.down_blocks.{i}.", "renderer.appearance.down.{i}.", CONV_BN),
    Rule("generator.second.", "renderer.appearance.lift."),
    Rule("generator.resblocks_3d.3dr{i}.", "renderer.appearance.residuals.{i}.", RES3D),
    Rule(_DM + "compress.", "renderer.motion.compress."),
    Rule(_DM + "norm.", "renderer.motion.bn."),
    Rule(_DM + "hourglass.encoder.down_blocks.{i}.", "renderer.motion.hourglass.down.{i}.", CONV_BN),
    Rule(_DM + "hourglass.decoder.up_blocks.{i}.", "renderer.motion.hourglass.up.{i}.", CONV_BN),
    Rule(_DM + "hourglass.decoder.", "renderer.motion.hourglass.", CONV_BN),
    Rule(_DM + "mask.", "renderer.motion.masks."),
    Rule(_DM + "occlusion.", "renderer.motion.occlusion."),
    Rule("generator.third.", "renderer.third.", CONV_BN),
    Rule("generator.fourth.", "renderer.fourth."),
    Rule("generator.decoder.fc.", "renderer.decoder.fc."),
    Rule("generator.decoder.G_middle_{i}.", "renderer.decoder.middle.{i}.", SPADE_BLOCK),
    Rule("generator.decoder.up_0.", "renderer.decoder.up_a.", SPADE_BLOCK),
    Rule("generator.decoder.up_1.", "renderer.decoder.up_b.", SPADE_BLOCK),
    Rule("generator.decoder.conv_img.", "renderer.decoder.to_rgb."),
    Rule("face_3drecon.backbone.conv1.", "recon.conv."),
    Rule("face_3drecon.backbone.bn1.", "recon.bn."),
    *[Rule(f"face_3drecon.backbone.layer{s + 1}.{{i}}.", f"recon.stages.{s}.{{i}}.", BOTTLENECK)
      for s in range(4)],
    Rule("face_3drecon.final_layers.{i}.", "recon.heads.{i}."),
)

#: Official prefixes present in the safetensors but not needed to generate, with the reason.
TRAINING_ONLY: dict[str, str] = {
    "audio2pose.netG.encoder.": "PoseVAE's encoder (posterior q(z|pose)), used only in training",
    "audio2pose.netD_motion.": "PoseVAE's pose-sequence discriminator, used only in training",
}

#: MappingNet's state dict (the ``mapping`` entry of mapping_*.pth.tar); our side: MappingNet.
MAPPING_TABLE: tuple[Rule, ...] = _rules(
    ("first.0.", "first."), ("encoder{i}.1.", "blocks.{i}."), ("fc_yaw.", "yaw."),
    ("fc_pitch.", "pitch."), ("fc_roll.", "roll."), ("fc_t.", "t."), ("fc_exp.", "exp."))


@lru_cache(maxsize=None)
def _pattern(template: str) -> re.Pattern:
    """Template → regex matching it as a key prefix, ``{i}`` capturing digits."""
    return re.compile(re.escape(template).replace(r"\{i\}", r"(?P<i>\d+)"))


def _translate(key: str, rules: tuple[Rule, ...], forward: bool) -> str | None:
    """One key through the table (official → ours when ``forward``), or None if no rule fits."""
    for rule in rules:
        src, dst = (rule.official, rule.ours) if forward else (rule.ours, rule.official)
        match = _pattern(src).match(key)
        if not match:
            continue
        head = dst.replace("{i}", match.groupdict().get("i") or "")
        rest = key[match.end():]
        if rule.children:
            tail = _translate(rest, rule.children, forward)
            if tail is not None:
                return head + tail
        elif rest in LEAVES or (rest == "" and not src.endswith(".")):
            return head + rest
    return None


def official_to_ours(key: str, rules: tuple[Rule, ...] = SAFETENSORS_TABLE) -> str | None:
    """Official key → our key (None when the table has no rule for it)."""
    return _translate(key, rules, True)


def ours_to_official(key: str, rules: tuple[Rule, ...] = SAFETENSORS_TABLE) -> str | None:
    """Our key → official key (None when the table has no rule for it)."""
    return _translate(key, rules, False)


def fold_spectral_norm(tensors: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """Replace each ``X.weight_orig``/``X.weight_u``/``X.weight_v`` triple by ``X.weight``."""
    out = {k: v for k, v in tensors.items() if not k.endswith((".weight_orig", ".weight_u", ".weight_v"))}
    bases = {k.rsplit(".", 1)[0] for k in tensors if k.endswith((".weight_orig", ".weight_u", ".weight_v"))}
    incomplete = []
    for base in sorted(bases):
        parts = [tensors.get(f"{base}.weight_{s}") for s in ("orig", "u", "v")]
        if any(p is None for p in parts):
            incomplete.append(base)
            continue
        w, u, v = (p.float() for p in parts)
        sigma = torch.dot(u, torch.mv(w.reshape(w.shape[0], -1), v))
        out[f"{base}.weight"] = w / sigma
    if incomplete:
        raise CheckpointError(f"{source}: incomplete spectral-norm triples (weight_orig/_u/_v) "
                              f"for {', '.join(incomplete)}")
    return out


def _listing(keys, limit: int = 12) -> str:
    keys = sorted(keys)
    more = f" … and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def map_state(tensors: dict[str, torch.Tensor], module: nn.Module, rules: tuple[Rule, ...],
              source: str, skip: dict[str, str] | None = None) -> dict[str, torch.Tensor]:
    """Official tensors → ``module``'s state dict, strictly; raises CheckpointError."""
    tensors = fold_spectral_norm(tensors, source)
    expected = module.state_dict()
    mapped, unexpected, wrong = {}, [], []
    for key, value in tensors.items():
        if skip and key.startswith(tuple(skip)):
            continue
        ours = official_to_ours(key, rules)
        if ours is None or ours not in expected:
            unexpected.append(key)
        elif tuple(value.shape) != tuple(expected[ours].shape):
            wrong.append(f"{key} {tuple(value.shape)} (expected {tuple(expected[ours].shape)})")
        else:
            mapped[ours] = value.to(expected[ours].dtype)
    missing = [ours_to_official(k, rules) or k for k in expected if k not in mapped]
    problems = [f"{name}: {_listing(keys)}" for name, keys in
                (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", wrong))
                if keys]
    if problems:
        raise CheckpointError(f"{source} does not match the SadTalker networks — "
                              + "; ".join(problems) + ". Use the official v0.0.2 checkpoint files.")
    return mapped


class SadTalkerNets(nn.Module):
    """Everything SadTalker_V0.0.2_*.safetensors holds that generation needs."""

    def __init__(self, expnet: dict | None = None, posevae: dict | None = None,
                 renderer: dict | None = None, recon: dict | None = None):
        super().__init__()
        self.expnet = ExpNet(**(expnet or {}))
        self.posevae = PoseVAE(**(posevae or {}))
        self.renderer = Renderer(**(renderer or {}))
        self.recon = CoefficientRegressor(**(recon or {}))


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a .safetensors file; CheckpointError when missing or unreadable."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise CheckpointError(f"{path} not found: download the SadTalker v0.0.2 checkpoints into that folder")
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises several types for corrupt files
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc})") from exc


def read_mapping(path: Path) -> dict[str, torch.Tensor]:
    """The ``mapping`` state dict of a mapping_*.pth.tar (weights_only); other entries
    (optimizer, discriminator, epoch) are training state and ignored."""
    if not path.is_file():
        raise CheckpointError(f"{path} not found: download the SadTalker v0.0.2 checkpoints into that folder")
    try:
        blob = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path} cannot be read as a weights-only torch checkpoint ({exc})") from exc
    if not isinstance(blob, dict) or not isinstance(blob.get("mapping"), dict):
        raise CheckpointError(f"{path} has no 'mapping' state dict")
    return blob["mapping"]


def load_sadtalker(path: Path, nets: SadTalkerNets | None = None) -> SadTalkerNets:
    """SadTalker_V0.0.2_*.safetensors → :class:`SadTalkerNets` in eval mode."""
    nets = nets or SadTalkerNets()
    state = map_state(read_safetensors(Path(path)), nets, SAFETENSORS_TABLE, str(path), TRAINING_ONLY)
    nets.load_state_dict(state, strict=True)
    return nets.eval()


def load_mapping(path: Path, net: MappingNet | None = None) -> MappingNet:
    """mapping_*.pth.tar → :class:`MappingNet` in eval mode (input and hidden widths from the
    file's first convolution, (width, coeffs, 7))."""
    tensors = read_mapping(Path(path))
    if net is None:
        first = tensors.get("first.0.weight")
        net = MappingNet(coeffs=int(first.shape[1]), width=int(first.shape[0])) \
            if first is not None and first.dim() == 3 else MappingNet()
    net.load_state_dict(map_state(tensors, net, MAPPING_TABLE, str(path)), strict=True)
    return net.eval()


def checkpoint_paths(folder: Path, size: int = 256, full: bool = False) -> tuple[Path, Path]:
    """The two files a generation needs from ``folder``: (safetensors, mapping)."""
    if size not in (256, 512):
        raise CheckpointError(f"size must be 256 or 512, got {size}")
    folder = Path(folder)
    return folder / SAFETENSORS_NAME.format(size=size), folder / MAPPING_NAMES[73 if full else 70]
