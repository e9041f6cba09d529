#!/usr/bin/env python3
"""interleave's reference PyTorch trainer: the tfjs adapter's small T-Rex2-like model, in torch.

    image patches -> [backbone: patch embedding + attention/MLP blocks] -> [neck: LN + projection] = F
    text prompt   -> [text-encoder: token embedding -> per-token MLP -> mean pool -> MLP -> LN] = e
    visual prompt -> [visual-encoder: box sine-cosine embedding -> MLP -> cross-attention over the
                      prompt image's F, restricted to the box -> MLP -> LN] = e
    [head] score(prompt, patch) = scale * <e, F_patch> / sqrt(d) + bias;  box(patch) = MLP(F_patch)

Losses: sigmoid focal loss on the scores, L1 on boxes (weight 10) and, on visual steps that come
after at least one text step of the schedule, InfoNCE alignment of visual prompt embeddings to
the (detached) text embeddings of their classes, weighted by the ``alignWeight`` option (default
1; 0 switches it off, T-Rex2's ablation). Visual steps never train the text encoder and text
steps never reach the visual prompt encoder, as in the tfjs trainer.

Data: a seeded synthetic generator (4 colours x 4 shapes, named in words, 3 objects per image in
distinct cells of a 2x2 grid). The batch of step s is a pure function of (seed, modality, s, batch
size); held-out images come from their own stream. Same spirit as adapters/tfjs/data.ts, not
bit-identical to it.

Modes:
  interleave_reference_trainer.py [--device cpu|cuda] [--threads N]
      serves interleave's step protocol on stdin/stdout (docs/step-protocol.md) via interleave_sdk.
  interleave_reference_trainer.py --bare-loop SPEC.json --steps N --out timings.json
      runs the same steps in a plain loop (plans from interleave_sdk.plan_step), no protocol, and
      writes per-step durations: the baseline for measuring the harness's overhead.

Hello options: preset (tiny|small|base, default tiny), lrScale (default: the preset's: 10 for
tiny/small, 1 for base; every plan lr is multiplied by it), alignWeight (default 1), device
(cpu|cuda, default the --device flag), evalImages (default: the preset's validation set size).
"""

from __future__ import annotations

import argparse
import json
import contextlib
import math
import os
import sys
import time
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import interleave_sdk as sdk  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

TRAINER_NAME = "interleave-reference-torch"
TRAINER_VERSION = "1"
CHECKPOINT_FORMAT = "interleave-torch-checkpoint/1"

# ---- presets (same sizes as adapters/tfjs/presets.ts) --------------------------------------------

PRESETS: Dict[str, Dict[str, Any]] = {
    "tiny": dict(imageSize=32, patchSize=4, width=32, heads=2, encoderBlocks=2, promptLayers=2, mlpRatio=2,
                 boxFreqs=6, validationImages=96, lrScale=10),
    "small": dict(imageSize=64, patchSize=8, width=128, heads=4, encoderBlocks=4, promptLayers=2, mlpRatio=4,
                  boxFreqs=8, validationImages=128, lrScale=10),
    "base": dict(imageSize=64, patchSize=4, width=256, heads=8, encoderBlocks=6, promptLayers=3, mlpRatio=4,
                 boxFreqs=8, validationImages=128, lrScale=1),
}
for _name, _p in PRESETS.items():
    _p["name"] = _name

# ---- data ---------------------------------------------------------------------------------------

COLOURS = ("red", "green", "blue", "yellow")
SHAPES = ("circle", "square", "triangle", "cross")
NUM_CLASSES = len(COLOURS) * len(SHAPES)
OBJECTS_PER_IMAGE = 3
VOCAB = COLOURS + SHAPES
TOKENS_PER_NAME = 2
RGB = torch.tensor([[0.9, 0.15, 0.15], [0.15, 0.8, 0.2], [0.2, 0.3, 0.95], [0.9, 0.85, 0.15]])
STREAMS = {"visual": 1, "text": 2, "val": 3}
M32 = 0xFFFFFFFF


def class_name(cls: int) -> str:
    return f"{COLOURS[cls // len(SHAPES)]} {SHAPES[cls % len(SHAPES)]}"


def tokenize(name: str) -> List[int]:
    return [VOCAB.index(w) for w in name.split(" ")]


ALL_TOKENS = torch.tensor([tokenize(class_name(c)) for c in range(NUM_CLASSES)], dtype=torch.long)  # [C, 2]


def mix32(h: int) -> int:
    x = h & M32
    x ^= x >> 16
    x = (x * 0x85EBCA6B) & M32
    x ^= x >> 13
    x = (x * 0xC2B2AE35) & M32
    x ^= x >> 16
    return x


def hash_of(*parts: int) -> int:
    h = 0x9E3779B9
    for p in parts:
        h = mix32(h ^ mix32(((p & M32) + 0x632BE5AB) & M32))
    return h


def name_hash(s: str) -> int:
    h = 2166136261
    for ch in s:
        h = ((h ^ ord(ch)) * 16777619) & M32
    return h


def generator(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def draw_images(geo: Mapping[str, Any], gen: torch.Generator, count: int):
    """``count`` images from one random stream: pixels [B, S, S, 3] (normalised around 0),
    classes [B, K] (distinct per image), boxes [B, K, 4] as (x1, y1, x2, y2) in [0, 1]."""
    s = geo["imageSize"]
    cell = s // 2
    k = OBJECTS_PER_IMAGE
    noise = 0.08 + 0.08 * torch.rand(count, s, s, 3, generator=gen)
    cells = torch.rand(count, 4, generator=gen).argsort(dim=1)[:, :k]
    classes = torch.rand(count, NUM_CLASSES, generator=gen).argsort(dim=1)[:, :k]
    u = torch.rand(count, k, 4, generator=gen)
    jitter = torch.rand(count, k, 3, generator=gen)
    w = torch.round(cell * (0.55 + 0.4 * u[..., 0]))
    h = torch.round(cell * (0.55 + 0.4 * u[..., 1]))
    x0 = (cells % 2) * cell + torch.floor(u[..., 2] * (cell - w + 1))
    y0 = torch.div(cells, 2, rounding_mode="floor") * cell + torch.floor(u[..., 3] * (cell - h + 1))
    colour = torch.div(classes, len(SHAPES), rounding_mode="floor")
    shape = classes % len(SHAPES)
    rgb = (RGB[colour] + (jitter - 0.5) * 0.16).clamp(0, 1)  # [B, K, 3]
    coord = torch.arange(s, dtype=torch.float32)
    px = coord.view(1, 1, 1, s)
    py = coord.view(1, 1, s, 1)
    x0e, y0e, we, he = (t[..., None, None] for t in (x0, y0, w, h))
    inbox = (px >= x0e) & (px < x0e + we) & (py >= y0e) & (py < y0e + he)
    du = (px - x0e + 0.5) / we - 0.5
    dv = (py - y0e + 0.5) / he - 0.5
    masks = torch.stack(
        [
            du * du + dv * dv <= 0.25,
            torch.ones_like(inbox),
            dv + 0.5 >= du.abs() * 2,
            (du.abs() < 0.17) | (dv.abs() < 0.17),
        ],
        dim=-1,
    )  # [B, K, S, S, 4]
    on = inbox & masks.gather(-1, shape[:, :, None, None, None].expand(-1, -1, s, s, 1)).squeeze(-1)
    pixels = noise
    for j in range(k):  # objects sit in distinct cells: no overlap
        pixels = torch.where(on[:, j, :, :, None], rgb[:, j, None, None, :], pixels)
    pixels = (pixels - 0.35) / 0.35
    boxes = torch.stack([x0 / s, y0 / s, (x0 + w) / s, (y0 + h) / s], dim=-1)
    return pixels, classes, boxes


class Batch:
    """Model-ready tensors of one batch (see adapters/tfjs/data.ts for the layout)."""

    def __init__(self, geo: Mapping[str, Any], pixels, classes, boxes, modality: str, box_freqs: int):
        s, p = geo["imageSize"], geo["patchSize"]
        g = s // p
        n = g * g
        b = pixels.shape[0]
        k = OBJECTS_PER_IMAGE
        self.size = b
        self.classes = classes
        self.boxes = boxes
        self.patches = pixels.view(b, g, p, g, p, 3).permute(0, 1, 3, 2, 4, 5).reshape(b * n, p * p * 3)
        idx = torch.arange(n)
        cx = ((idx % g).float() + 0.5) / g
        cy = (torch.div(idx, g, rounding_mode="floor").float() + 0.5) / g
        x1, y1, x2, y2 = (boxes[..., i, None] for i in range(4))  # [B, K, 1]
        inside = (cx >= x1) & (cx <= x2) & (cy >= y1) & (cy <= y2)  # [B, K, N]
        hit = inside.any(dim=1)  # [B, N]
        first = inside.float().argmax(dim=1)  # first object whose box holds the patch centre
        self.patch_class = torch.where(hit, classes.gather(1, first), torch.full_like(first, -1)).reshape(-1)
        box = boxes.gather(1, first[..., None].expand(-1, -1, 4))  # [B, N, 4]
        cxcywh = torch.stack([(box[..., 0] + box[..., 2]) / 2, (box[..., 1] + box[..., 3]) / 2,
                              box[..., 2] - box[..., 0], box[..., 3] - box[..., 1]], dim=-1)
        self.box_mask = hit.float().reshape(b * n, 1)
        self.box_targets = (cxcywh * hit[..., None]).reshape(b * n, 4)
        self.modality = modality
        if modality == "text":
            self.prompt_class = torch.arange(NUM_CLASSES)
        else:
            self.prompt_class = classes.reshape(-1)
            self.box_emb = box_embedding(boxes.reshape(b * k, 4), box_freqs)
            self.box_bias = torch.where(inside, torch.tensor(0.0), torch.tensor(-1e4))  # [B, K, N]
        self.targets = (self.patch_class[None, :] == self.prompt_class[:, None]).float()

    def to(self, device: torch.device) -> "Batch":
        for key, v in list(vars(self).items()):
            if isinstance(v, torch.Tensor):
                setattr(self, key, v.to(device))
        return self


def box_embedding(boxes, freqs: int):
    """[P, 4] -> [P, 8 * freqs]: each coordinate at ``freqs`` octaves, (sin, cos) pairs."""
    scale = math.pi * (2.0 ** torch.arange(freqs, dtype=torch.float32))
    a = boxes[..., None] * scale  # [P, 4, F]
    return torch.stack([torch.sin(a), torch.cos(a)], dim=-1).reshape(boxes.shape[0], 8 * freqs)


def batch_at(geo, seed: int, modality: str, step: int, size: int) -> Batch:
    """The batch of a step: a pure function of (seed, modality, step, size)."""
    pixels, classes, boxes = draw_images(geo, generator(hash_of(seed, STREAMS[modality], step)), size)
    return Batch(geo, pixels, classes, boxes, modality, geo["boxFreqs"])


def validation_set(geo, seed: int, count: int):
    return draw_images(geo, generator(hash_of(seed ^ 0x5EED, STREAMS["val"], 0)), count)


# ---- parameter groups (rules of adapters/tfjs/param-groups.ts) -----------------------------------

MODULES = ("backbone", "neck", "text-encoder", "visual-encoder", "head")
KEYWORDS = {
    "backbone": ("backbone", "image", "vision", "swin", "vit", "resnet"),
    "neck": ("neck", "fpn"),
    "text-encoder": ("text", "language", "lm", "bert", "clip", "token"),
    "visual-encoder": ("visual", "prompt", "vpe", "exemplar"),
    "head": ("head", "decoder", "detector", "box", "bbox", "cls", "classifier"),
}
CATCH_ALL = {"default", "rest", "other", "others", "all", "base"}


def _normal(s: str) -> str:
    return "".join(ch for ch in s.lower() if ch.isascii() and ch.isalnum())


def _words(s: str) -> List[str]:
    out, cur = [], ""
    for ch in s.lower():
        if ch.isascii() and ch.isalnum():
            cur += ch
        elif cur:
            out.append(cur)
            cur = ""
    return out + ([cur] if cur else [])


def assign_groups(names: List[str]) -> Dict[str, str]:
    """Module -> spec group: exact name, else a keyword word, else a catch-all, else the last."""
    if not names:
        raise ValueError("the optimizer needs at least one parameter group")
    fallback = next((g for g in names if _normal(g) in CATCH_ALL), names[-1])
    out = {}
    for m in MODULES:
        exact = next((g for g in names if _normal(g) == _normal(m)), None)
        by_word = next((g for g in names if any(w in KEYWORDS[m] for w in _words(g))), None)
        out[m] = exact or by_word or fallback
    return out


# ---- model --------------------------------------------------------------------------------------

FOCAL_ALPHA = 0.25
BOX_WEIGHT = 10.0
ALIGN_TEMPERATURE = 0.1


class Model:
    """Parameters by stable name (as in the tfjs model), each with its module and decay flag."""

    def __init__(self, preset: Mapping[str, Any], seed: int, device: torch.device):
        self.preset = preset
        self.params: "OrderedDict[str, torch.nn.Parameter]" = OrderedDict()
        self.module: Dict[str, str] = {}
        self.decay: Dict[str, bool] = {}
        d = preset["width"]
        hidden = d * preset["mlpRatio"]
        self.n = (preset["imageSize"] // preset["patchSize"]) ** 2

        def add(module, name, shape, init, decay=None):
            if init == "normal":
                g = generator(hash_of(seed, name_hash(name)))
                t = torch.randn(*shape, generator=g) * (1.0 / math.sqrt(shape[0]))
            else:
                t = torch.full(shape, float(init))
            self.params[name] = torch.nn.Parameter(t.to(device))
            self.module[name] = module
            # Weight decay on weight matrices only: not on biases, norms, scalars or embeddings.
            self.decay[name] = len(shape) > 1 if decay is None else decay

        def dense(module, name, fan_in, fan_out):
            add(module, f"{name}/w", (fan_in, fan_out), "normal")
            add(module, f"{name}/b", (fan_out,), 0)

        def norm(module, name):
            add(module, f"{name}/g", (d,), 1)
            add(module, f"{name}/b", (d,), 0)

        p = preset
        dense("backbone", "backbone/patch", p["patchSize"] ** 2 * 3, d)
        add("backbone", "backbone/pos", (self.n, d), "normal", decay=False)
        for b in range(p["encoderBlocks"]):
            name = f"backbone/block{b}"
            norm("backbone", f"{name}/ln1")
            for m in ("wq", "wk", "wv", "wo"):
                dense("backbone", f"{name}/attn/{m}", d, d)
            norm("backbone", f"{name}/ln2")
            dense("backbone", f"{name}/mlp1", d, hidden)
            dense("backbone", f"{name}/mlp2", hidden, d)
        norm("neck", "neck/ln")
        dense("neck", "neck/proj", d, d)
        add("text-encoder", "text/tokens", (len(VOCAB), d), "normal", decay=False)
        dense("text-encoder", "text/mlp1", d, hidden)
        dense("text-encoder", "text/mlp2", hidden, d)
        norm("text-encoder", "text/ln")
        dense("visual-encoder", "visual/box1", 8 * p["boxFreqs"], d)
        dense("visual-encoder", "visual/box2", d, d)
        for l_ in range(p["promptLayers"]):
            name = f"visual/layer{l_}"
            norm("visual-encoder", f"{name}/ln1")
            for m in ("wq", "wk", "wv", "wo"):
                dense("visual-encoder", f"{name}/attn/{m}", d, d)
            norm("visual-encoder", f"{name}/ln2")
            dense("visual-encoder", f"{name}/mlp1", d, hidden)
            dense("visual-encoder", f"{name}/mlp2", hidden, d)
        norm("visual-encoder", "visual/ln")
        add("head", "head/scale", (1,), 1)
        add("head", "head/bias", (1,), -4)  # focal-loss prior: most (prompt, patch) pairs are negative
        dense("head", "head/box1", d, d)
        add("head", "head/box2/w", (d, 4), 0)  # every patch starts at its anchor
        add("head", "head/box2/b", (4,), 0)
        self.anchor_cache: Dict[int, torch.Tensor] = {}
        self.device = device

    def count(self) -> int:
        return sum(p.numel() for p in self.params.values())

    # -- layers --
    def dense(self, name, x):
        return torch.addmm(self.params[f"{name}/b"], x, self.params[f"{name}/w"]) if x.dim() == 2 else \
            x @ self.params[f"{name}/w"] + self.params[f"{name}/b"]

    def ln(self, name, x):
        return F.layer_norm(x, x.shape[-1:], self.params[f"{name}/g"], self.params[f"{name}/b"], 1e-5)

    def mlp(self, name, x):
        return self.dense(f"{name}/mlp2", torch.relu(self.dense(f"{name}/mlp1", x)))

    def self_attention(self, name, x, b):
        n, heads = self.n, self.preset["heads"]
        d = x.shape[1]
        dh = d // heads

        def split(t):
            return t.view(b, n, heads, dh).transpose(1, 2)  # [B, H, N, dh]

        q = split(self.dense(f"{name}/wq", x))
        k = split(self.dense(f"{name}/wk", x))
        v = split(self.dense(f"{name}/wv", x))
        attn = torch.softmax(q @ k.transpose(-1, -2) * (1.0 / math.sqrt(dh)), dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(b * n, d)
        return self.dense(f"{name}/wo", out)

    # -- modules --
    def encode_images(self, patches, b):
        d = self.preset["width"]
        x = self.dense("backbone/patch", patches)
        x = (x.view(b, self.n, d) + self.params["backbone/pos"]).view(b * self.n, d)
        for i in range(self.preset["encoderBlocks"]):
            name = f"backbone/block{i}"
            x = x + self.self_attention(f"{name}/attn", self.ln(f"{name}/ln1", x), b)
            x = x + self.mlp(name, self.ln(f"{name}/ln2", x))
        return self.dense("neck/proj", self.ln("neck/ln", x))

    def encode_text(self, tokens):
        """Token ids [C, T] -> prompt embeddings [C, d]."""
        c, t = tokens.shape
        emb = self.params["text/tokens"][tokens.reshape(-1)]
        h = torch.relu(self.dense("text/mlp1", emb))
        pooled = h.view(c, t, -1).mean(dim=1)
        return self.ln("text/ln", self.dense("text/mlp2", pooled))

    def encode_visual(self, feats, box_emb, box_bias):
        """Box-restricted cross-attention: feats [B*N, d], box_emb [B*K, 8F], box_bias [B, K, N]."""
        b, k, n = box_bias.shape
        d = self.preset["width"]
        q = self.dense("visual/box2", torch.relu(self.dense("visual/box1", box_emb)))
        for i in range(self.preset["promptLayers"]):
            name = f"visual/layer{i}"
            h = self.ln(f"{name}/ln1", q)
            qh = self.dense(f"{name}/attn/wq", h).view(b, k, d)
            kf = self.dense(f"{name}/attn/wk", feats).view(b, n, d)
            vf = self.dense(f"{name}/attn/wv", feats).view(b, n, d)
            logits = qh @ kf.transpose(1, 2) * (1.0 / math.sqrt(d)) + box_bias
            pooled = (torch.softmax(logits, dim=-1) @ vf).reshape(b * k, d)
            q = q + self.dense(f"{name}/attn/wo", pooled)
            q = q + self.mlp(name, self.ln(f"{name}/ln2", q))
        return self.ln("visual/ln", q)

    def score(self, prompts, feats):
        return prompts @ feats.t() * (self.params["head/scale"] / math.sqrt(self.preset["width"])) + self.params["head/bias"]

    def anchors(self, b):
        a = self.anchor_cache.get(b)
        if a is None:
            g = self.preset["imageSize"] // self.preset["patchSize"]
            idx = torch.arange(self.n)
            cx = ((idx % g).float() + 0.5) / g
            cy = (torch.div(idx, g, rounding_mode="floor").float() + 0.5) / g
            one = torch.stack([cx, cy, torch.full_like(cx, 0.35), torch.full_like(cx, 0.35)], dim=-1)
            a = one.repeat(b, 1).to(self.device)
            self.anchor_cache[b] = a
        return a

    def predict_boxes(self, feats, b):
        return self.dense("head/box2", torch.relu(self.dense("head/box1", feats))) + self.anchors(b)


def focal_loss(logits, targets, positives: float):
    p = torch.sigmoid(logits)
    ce = F.softplus(logits) - logits * targets
    one_minus_pt = p + targets - 2 * p * targets
    alpha = targets * (2 * FOCAL_ALPHA - 1) + (1 - FOCAL_ALPHA)
    return (alpha * ce * one_minus_pt.square()).sum() / max(1.0, positives)


def box_l1(pred, target, mask, masked: float):
    return ((pred - target).abs() * mask).sum() / max(1.0, masked * 4)


def alignment_loss(visual, text_const, classes):
    """InfoNCE of visual prompt embeddings [P, d] against every class's (constant) text embedding."""
    logits = F.normalize(visual, dim=1, eps=1e-8) @ F.normalize(text_const, dim=1, eps=1e-8).t() / ALIGN_TEMPERATURE
    return F.cross_entropy(logits, classes)


def iou(a, b):
    """Row-wise IoU of [P, 4] boxes (x1, y1, x2, y2)."""
    iw = (torch.minimum(a[:, 2], b[:, 2]) - torch.maximum(a[:, 0], b[:, 0])).clamp(min=0)
    ih = (torch.minimum(a[:, 3], b[:, 3]) - torch.maximum(a[:, 1], b[:, 1])).clamp(min=0)
    inter = iw * ih
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


# ---- the trainer --------------------------------------------------------------------------------

KNOWN_OPTIONS = ("preset", "lrScale", "alignWeight", "device", "evalImages")


class Trainer:
    def __init__(self, spec: Mapping[str, Any], options: Optional[Mapping[str, Any]] = None, device: str = "cpu"):
        options = dict(options or {})
        unknown = [k for k in options if k not in KNOWN_OPTIONS]
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(unknown)} (known: {', '.join(KNOWN_OPTIONS)})")
        preset_name = options.get("preset", "tiny")
        if preset_name not in PRESETS:
            raise ValueError(f"unknown preset {preset_name!r} (known: {', '.join(PRESETS)})")
        self.preset = PRESETS[preset_name]
        self.spec = sdk.normalize_spec(spec)
        self.seed = int(self.spec.get("seed", 0))
        self.lr_scale = float(options.get("lrScale", self.preset["lrScale"]))
        if not math.isfinite(self.lr_scale) or self.lr_scale <= 0:
            raise ValueError(f"lrScale must be a finite number > 0, got {options.get('lrScale')!r}")
        self.align_weight = float(options.get("alignWeight", 1.0))
        if not math.isfinite(self.align_weight) or self.align_weight < 0:
            raise ValueError(f"alignWeight must be a finite number >= 0, got {options.get('alignWeight')!r}")
        device = str(options.get("device", device))
        if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
            raise ValueError(f"device must be cpu or cuda, got {device!r}")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise RuntimeError(f"device {device} was asked for, but torch {torch.__version__} sees no CUDA device (torch.cuda.is_available() is False)")
        self.device = torch.device(device)
        self.eval_images = int(options.get("evalImages", self.preset["validationImages"]))
        self.options = {"preset": preset_name, "lrScale": self.lr_scale, "alignWeight": self.align_weight,
                        "device": device, "evalImages": self.eval_images}

        self.model = Model(self.preset, self.seed, self.device)
        names = sdk.group_names(self.spec)
        self.groups = assign_groups(names)
        opt = self.spec["optimizer"]
        decay_of = {g["name"]: g.get("weightDecay", opt.get("weightDecay", 0)) for g in opt["groups"]}
        torch_groups = []
        for g in names:
            for decays in (True, False):
                ps = [p for n, p in self.model.params.items() if self.groups[self.model.module[n]] == g and self.model.decay[n] == decays]
                if ps:
                    torch_groups.append({"params": ps, "name": g, "weight_decay": decay_of[g] if decays else 0.0,
                                         "lr": 0.0})
        betas = (opt.get("beta1", 0.9), opt.get("beta2", 0.999))
        eps = opt.get("epsilon", 1e-8)
        kind = opt["kind"]
        if kind == "adamw":
            self.optimizer = torch.optim.AdamW(torch_groups, lr=0.0, betas=betas, eps=eps, foreach=False)
        elif kind == "adam":
            self.optimizer = torch.optim.Adam(torch_groups, lr=0.0, betas=betas, eps=eps, foreach=False)
        elif kind == "sgd":
            self.optimizer = torch.optim.SGD(torch_groups, lr=0.0, momentum=opt.get("momentum", 0), foreach=False)
        else:
            raise ValueError(f"optimizer kind {kind!r} is not one of adamw, adam, sgd")
        self.pending = 0  # micro-steps accumulated since the last update
        self.tokens = ALL_TOKENS.to(self.device)
        self._val = None

    # -- info --
    def info(self) -> Dict[str, str]:
        p = self.preset
        return {
            "device": str(self.device) if self.device.type == "cpu" else f"{self.device} ({torch.cuda.get_device_name(self.device)})",
            "framework": f"torch {torch.__version__}",
            "model": (f"T-Rex2-like {p['name']}: {p['imageSize']}px images, width {p['width']}, {p['encoderBlocks']} encoder blocks, "
                      f"{p['promptLayers']} visual-prompt layers, {self.model.count()} parameters"),
            "groups": ", ".join(f"{m}={self.groups[m]}" for m in MODULES),
            "preset": p["name"],
            "lrScale": sdk.js_number(self.lr_scale),
            "alignWeight": sdk.js_number(self.align_weight),
            "threads": str(torch.get_num_threads()),
            "durationMs": "SDK-measured wall time of data generation, forward, backward, optimizer update and loss read-back",
            "metric": "recall@iou0.5 on held-out images; chance = prompt-blind detector (1 of 3 objects)",
            "memory": ("torch.cuda allocated / reserved / peak (reset per step), RSS" if self.device.type != "cpu" else
                       "peakBytes = parameters + gradients + optimizer state + activations saved for backward, "
                       "counted from the step's tensors (no CPU allocator reports a peak); "
                       "allocatedBytes = parameters + held gradients + optimizer state after the step; RSS"),
        }

    # -- one micro-step --
    def step(self, plan: Mapping[str, Any]) -> Dict[str, Any]:
        modality = plan["modality"]
        size = int(self.spec["batch"][modality]["size"])
        align = (modality == "visual" and self.align_weight > 0
                 and sdk.text_steps_before(self.spec, plan["phase"], plan["phaseStep"]) > 0)
        batch = batch_at(self.preset, self.seed, modality, int(plan["step"]), size)
        if self.device.type != "cpu":
            batch.to(self.device)
        m = self.model
        positives = float(batch.targets.sum())
        masked = float(batch.box_mask.sum())
        # On CPU no allocator counts bytes: count the tensors autograd saves for backward (the step's
        # activations), so the in-step peak is measured from the step's own tensors.
        saved: Dict[int, int] = {}
        counting = self.device.type == "cpu"
        hooks = torch.autograd.graph.saved_tensors_hooks(
            lambda t: (saved.__setitem__(t.storage().data_ptr(), t.storage().nbytes()), t)[1],
            lambda t: t,
        ) if counting else contextlib.nullcontext()
        with hooks:
            feats, prompts, parts, total = self._forward(m, batch, modality, size, positives, masked, align)
        values = torch.stack([t.detach() for t in parts.values()]).tolist()
        losses = dict(zip(parts.keys(), values))
        bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
        if bad:
            raise sdk.StepFailure("nan-loss", f"non-finite loss at step {plan['step']} ({modality}): "
                                  + ", ".join(f"{k}={v}" for k, v in bad.items()) + "; update not applied")
        total.backward()
        self.pending += 1
        memory: Dict[str, int] = {}
        if counting:
            # Live at the top of backward: weights, optimizer state, the gradients, the saved activations.
            resident = self._resident_bytes()
            memory["peakBytes"] = resident + sum(saved.values())
        if plan["update"]:
            self.apply(plan["lr"])
        if counting:
            memory["allocatedBytes"] = self._resident_bytes()
        return {"losses": losses, "samples": size, "memory": memory}

    def _resident_bytes(self) -> int:
        """Bytes of the tensors that outlive a step: parameters, their gradients, optimizer state."""
        n = 0
        for p in self.model.params.values():
            n += p.numel() * p.element_size()
            if p.grad is not None:
                n += p.grad.numel() * p.grad.element_size()
        for state in self.optimizer.state.values():
            for v in state.values():
                if torch.is_tensor(v):
                    n += v.numel() * v.element_size()
        return n

    def _forward(self, m, batch, modality, size, positives, masked, align):
        feats = m.encode_images(batch.patches, size)
        if modality == "visual":
            prompts = m.encode_visual(feats, batch.box_emb, batch.box_bias)
        else:
            prompts = m.encode_text(self.tokens)
        cls = focal_loss(m.score(prompts, feats), batch.targets, positives)
        box = box_l1(m.predict_boxes(feats, size), batch.box_targets, batch.box_mask, masked)
        total = cls + BOX_WEIGHT * box
        parts = {"cls": cls, "box": box}
        if align:
            with torch.no_grad():  # stop-gradient: visual steps never train the text encoder
                text_const = m.encode_text(self.tokens)
            a = alignment_loss(prompts, text_const, batch.prompt_class)
            parts["align"] = a
            total = total + self.align_weight * a
        parts["total"] = total
        return feats, prompts, parts, total

    def apply(self, lr: Mapping[str, float]) -> None:
        """The optimizer update over the accumulated micro-steps: their mean gradient."""
        if self.pending == 0:
            return
        for g in self.optimizer.param_groups:
            value = lr.get(g["name"])
            if value is None or not math.isfinite(value):
                raise ValueError(f'the plan has no finite lr for parameter group "{g["name"]}"')
            g["lr"] = value * self.lr_scale
        if self.pending > 1:
            for p in self.model.params.values():
                if p.grad is not None:
                    p.grad.div_(self.pending)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)  # untouched modules keep grad None: no update, no decay
        self.pending = 0

    # -- evaluation --
    @torch.no_grad()
    def evaluate(self) -> Dict[str, Any]:
        m = self.model
        n, k, d = m.n, OBJECTS_PER_IMAGE, self.preset["width"]
        if self._val is None:
            self._val = validation_set(self.preset, self.seed, self.eval_images)
        pixels, classes, boxes = self._val
        b = pixels.shape[0]
        batch = Batch(self.preset, pixels, classes, boxes, "visual", self.preset["boxFreqs"]).to(self.device)
        feats, vis, pred = [], [], []
        for i in range(0, b, 32):  # chunks of 32 images, as the tfjs adapter
            j = min(b, i + 32)
            f = m.encode_images(batch.patches[i * n:j * n], j - i)
            feats.append(f)
            vis.append(m.encode_visual(f, batch.box_emb[i * k:j * k], batch.box_bias[i:j]))
            pred.append(m.predict_boxes(f, j - i))
        feats = torch.cat(feats).view(b, n, d)
        vis = torch.cat(vis)  # [B*K, d]: every object's box as a prompt on its own image
        pred = torch.cat(pred).view(b, n, 4)
        text = m.encode_text(self.tokens)
        cls_list = classes.tolist()
        # Cross-image exemplars: for each object, the same class's object in the next other image that has one.
        tgt_img, tgt_slot, exemplar = [], [], []
        for i in range(b):
            for s, c in enumerate(cls_list[i]):
                for dd in range(1, b):
                    j = (i + dd) % b
                    if c in cls_list[j]:
                        tgt_img.append(i)
                        tgt_slot.append(s)
                        exemplar.append(j * k + cls_list[j].index(c))
                        break
        dev = self.device

        def recall(img: List[int], slot: List[int], q) -> Tuple[float, float]:
            img_t = torch.tensor(img, device=dev)
            slot_t = torch.tensor(slot, device=dev)
            scores = torch.einsum("pd,pnd->pn", q, feats[img_t])
            patch = scores.argmax(dim=1)
            bx = pred[img_t, patch]
            box_pred = torch.stack([bx[:, 0] - bx[:, 2] / 2, bx[:, 1] - bx[:, 3] / 2,
                                    bx[:, 0] + bx[:, 2] / 2, bx[:, 1] + bx[:, 3] / 2], dim=1)
            truth = boxes.to(dev)[img_t, slot_t]
            hits = (iou(box_pred, truth) >= 0.5).float().sum().item()
            return hits / max(1, len(img)), float(len(img))

        all_img = [i for i in range(b) for _ in range(k)]
        all_slot = [s for _ in range(b) for s in range(k)]
        text_recall, _ = recall(all_img, all_slot, text[classes.reshape(-1).to(dev)])
        visual_recall, _ = recall(tgt_img, tgt_slot, vis[torch.tensor(exemplar, device=dev)])
        return {"metric": "recall@iou0.5", "values": {"visual": visual_recall, "text": text_recall},
                "chance": 1.0 / OBJECTS_PER_IMAGE}

    # -- checkpoints --
    def checkpoint(self, path: str) -> None:
        doc = {
            "format": CHECKPOINT_FORMAT,
            "preset": self.preset["name"],
            "seed": self.seed,
            "specHash": sdk.hash_json(self.spec),
            "params": {n: p.detach().cpu().clone() for n, p in self.model.params.items()},
            "grads": {n: (p.grad.detach().cpu().clone() if p.grad is not None else None) for n, p in self.model.params.items()},
            "pending": self.pending,
            "optimizer": self.optimizer.state_dict(),
            "rng": torch.get_rng_state(),
            "cudaRng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
        }
        tmp = f"{path}.tmp-{os.getpid()}"
        torch.save(doc, tmp)
        os.replace(tmp, path)

    def restore(self, path: str) -> None:
        doc = torch.load(path, map_location="cpu")
        if not isinstance(doc, dict) or doc.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path}: not a {CHECKPOINT_FORMAT} file")
        if doc["seed"] != self.seed:
            raise ValueError(f"{path}: checkpoint written with seed {doc['seed']}, this session runs seed {self.seed}; "
                             "a checkpoint only continues the run of its own seed")
        if doc["preset"] != self.preset["name"]:
            raise ValueError(f"{path}: checkpoint of preset {doc['preset']}, this session runs {self.preset['name']}")
        saved = doc["params"]
        if set(saved) != set(self.model.params):
            raise ValueError(f"{path}: its parameters do not match the model")
        with torch.no_grad():
            for n, p in self.model.params.items():
                if tuple(saved[n].shape) != tuple(p.shape):
                    raise ValueError(f"{path}: parameter {n} has shape {tuple(saved[n].shape)}, the model {tuple(p.shape)}")
                p.copy_(saved[n].to(p.device))
        for n, p in self.model.params.items():
            g = doc["grads"].get(n)
            p.grad = g.to(p.device) if g is not None else None
        self.optimizer.load_state_dict(doc["optimizer"])
        self.pending = int(doc["pending"])
        torch.set_rng_state(doc["rng"])
        if doc.get("cudaRng") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(doc["cudaRng"])


# ---- entry points -------------------------------------------------------------------------------


def serve_protocol(device: str) -> int:
    state: Dict[str, Trainer] = {}

    def hello(spec, options):
        try:
            trainer = Trainer(spec, options, device=device)
        except (ValueError, RuntimeError) as e:  # bad options, no CUDA: one line, no traceback
            raise sdk.StepFailure("trainer-error", f"{type(e).__name__}: {e}") from None
        state["t"] = trainer
        info = trainer.info()
        # CPU kernels with a fixed thread count are deterministic here (tests check restore and
        # re-runs bit for bit); CUDA's atomics are not: the engine's CUDA default applies.
        if trainer.device.type == "cpu":
            info["reproducible"] = "exact"
        return info

    return sdk.serve(
        step=lambda plan: state["t"].step(plan),
        checkpoint=lambda path: state["t"].checkpoint(path),
        restore=lambda path: state["t"].restore(path),
        evaluate=lambda: state["t"].evaluate(),
        hello=hello,
        name=TRAINER_NAME,
        version=TRAINER_VERSION,
        stateless=False,
    )


def bare_loop(spec_path: str, steps: Optional[int], out: str, options: Mapping[str, Any], device: str,
              evaluate: bool) -> Dict[str, Any]:
    """The same steps as a driven run, in a plain loop: no protocol, no JSON, no engine."""
    with open(spec_path, encoding="utf-8") as f:
        spec = sdk.normalize_spec(json.load(f))
    total = sdk.total_steps(spec)
    n = total if steps is None else min(total, steps)
    trainer = Trainer(spec, options, device=device)
    cuda = trainer.device.type == "cuda"
    rows = []
    for s in range(n):
        plan = sdk.plan_step(spec, s)
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        r = trainer.step(plan)
        if cuda:
            torch.cuda.synchronize()
        ms = (time.perf_counter() - t0) * 1000.0
        rows.append({"step": s, "modality": plan["modality"], "durationMs": ms, "total": r["losses"]["total"]})
    summary = {}
    for mod in ("visual", "text"):
        d = sorted(r["durationMs"] for r in rows if r["modality"] == mod)
        if d:
            summary[mod] = {"steps": len(d), "meanMs": sum(d) / len(d), "medianMs": d[len(d) // 2]}
    doc: Dict[str, Any] = {
        "kind": "bare-loop",
        "trainer": f"{TRAINER_NAME} {TRAINER_VERSION}",
        "spec": os.path.abspath(spec_path),
        "specHash": sdk.hash_json(spec),
        "steps": n,
        "options": trainer.options,
        "info": trainer.info(),
        "durationMs": "wall time of Trainer.step (data, forward, backward, update, loss read-back); "
                      "torch.cuda.synchronize() around it on CUDA",
        "summary": summary,
        "rows": rows,
    }
    if evaluate:
        doc["evaluation"] = trainer.evaluate()
    tmp = f"{out}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f)
    os.replace(tmp, out)
    return doc


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default cpu); the hello option device overrides it")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--bare-loop", metavar="SPEC.json", help="run SPEC's steps in a plain loop, without the protocol")
    ap.add_argument("--steps", type=int, help="bare loop: the first N steps (default all)")
    ap.add_argument("--out", help="bare loop: where to write the timings JSON")
    ap.add_argument("--options", default="{}", help="bare loop: adapter options as JSON (preset, lrScale, alignWeight, ...)")
    ap.add_argument("--evaluate", action="store_true", help="bare loop: evaluate after the last step")
    a = ap.parse_args(argv)
    if a.threads < 1:
        ap.error("--threads must be >= 1")
    torch.set_num_threads(a.threads)
    if a.bare_loop:
        if not a.out:
            ap.error("--bare-loop needs --out FILE")
        doc = bare_loop(a.bare_loop, a.steps, a.out, json.loads(a.options), a.device, a.evaluate)
        line = ", ".join(f"{m}: {v['meanMs']:.2f} ms mean over {v['steps']}" for m, v in doc["summary"].items())
        print(f"{doc['steps']} steps; {line}", file=sys.stderr)
        if "evaluation" in doc:
            print(f"recall@iou0.5: {doc['evaluation']['values']}", file=sys.stderr)
        return 0
    return serve_protocol(a.device)


if __name__ == "__main__":
    sys.exit(main())
