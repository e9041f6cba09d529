"""A real mmengine Runner training a toy detector the way PET-DINO is configured, recorded by
InterleaveRecorderHook. Used by python/tests/test_mmengine_real.py and test/adapters/mmengine-real.test.ts.

    PYTHONPATH="$(../shared/vendor/mmengine.sh)" /usr/bin/python3 python/tests/mmengine_toy.py \
        --work-dir DIR --log DIR/run.jsonl [--iters 200] [--accumulative-counts 4] [--raise-at 60]

What it shares with PET-DINO's config (configs of the mmdetection code base following T-Rex2):
  * module names: backbone, neck, language_model, encoder, decoder, bbox_head (no module is called
    "head": the spec's "head" group takes the rest). Unlike mmdet's DINO (whose level_embed is a
    parameter of the detector itself, so mmengine's first param group, the one whose lr
    scalars.json logs, is a "head" parameter), the first parameter here is the backbone's, the
    spec's first group: `interleave verify --log scalars.json --spec` compares the logged lr with
    the spec's first group;
  * AdamW lr 4e-4, weight decay 1e-4, paramwise_cfg custom_keys backbone / language_model / neck
    with lr_mult 0.01 (mmengine then builds one unnamed param group per parameter);
  * LinearLR warm-up (start_factor 0.1, by_epoch=False, begin 0, end WARMUP) and MultiStepLR
    (gamma 0.1, by iteration): the lr schedule of python/tests/scenarios/petdino-mmengine-toy.json,
    which is petdino-swin-t's shape shrunk to 200 iterations;
  * a prompt-type switch hook with PET-DINO's predicate, (runner.iter + 1) % 9 < 8 -> visual,
    setting model.prompt_type in before_train_iter at mmengine's default custom-hook priority;
  * an iteration-based loop (IterBasedTrainLoop) with an InfiniteSampler.
The model is tiny (a few thousand parameters) so that 200 iterations cost seconds of CPU.
"""

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PYDIR = os.path.dirname(HERE)
SCENARIO = os.path.join(HERE, "scenarios", "petdino-mmengine-toy.json")
if os.environ.get("INTERLEAVE_SDK_INSTALLED") != "1" and PYDIR not in sys.path:
    sys.path.insert(0, PYDIR)

import torch  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402
from mmengine.model import BaseModel  # noqa: E402
from mmengine.runner import Runner  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import Dataset  # noqa: E402

import interleave_mmengine  # noqa: E402,F401 - registers InterleaveRecorderHook in mmengine's HOOKS

WARMUP = 50
MILESTONES = [150, 190]


class ToyDataset(Dataset):
    """Images of 12 numbers with a class label and a box, both functions of the image. 2048 of
    them: 256 batches of 8, so that 200 iterations stay inside mmengine's first "epoch" (LoggerHook
    also logs at an epoch's end, which would add an off-interval row to scalars.json)."""

    def __init__(self, n=2048, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, 12, generator=g)
        self.label = (self.x[:, 0] > 0).long()
        self.box = torch.sigmoid(self.x[:, :4])

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"inputs": self.x[i], "label": self.label[i], "box": self.box[i]}


class ToyDetector(BaseModel):
    """PET-DINO's module names; a visual step prompts with the image, a text step with the
    language model's embedding of the class names (here: a learned table)."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 16))
        self.neck = nn.Sequential(nn.Linear(16, 16), nn.LayerNorm(16))
        self.language_model = nn.Embedding(2, 16)
        self.encoder = nn.Linear(16, 16)
        self.decoder = nn.Linear(16, 16)
        self.decoder.query_embed = nn.Parameter(torch.zeros(16))
        self.visual_prompt = nn.Linear(16, 16)
        self.bbox_head = nn.Linear(16, 4)
        self.prompt_type = "visual"

    def forward(self, inputs, label=None, box=None, mode="loss"):
        feat = self.neck(self.backbone(inputs))
        q = self.decoder(torch.relu(self.encoder(feat)) + self.decoder.query_embed)
        if self.prompt_type == "visual":
            prompts = self.visual_prompt(feat.detach()).mean(0, keepdim=True).expand(2, -1)
        else:
            prompts = self.language_model.weight
        logits = q @ prompts.t()
        loss_cls = nn.functional.cross_entropy(logits, label)
        loss_bbox = nn.functional.l1_loss(torch.sigmoid(self.bbox_head(q)), box)
        return {"loss_cls": loss_cls, "loss_bbox": loss_bbox}


class PromptTypeSwitchHook(Hook):
    """PET-DINO's switch: visual_prompt_iter=8, text_prompt_iter=1."""

    def __init__(self, visual_prompt_iter=8, text_prompt_iter=1):
        self.v = visual_prompt_iter
        self.c = visual_prompt_iter + text_prompt_iter

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        model = runner.model.module if hasattr(runner.model, "module") else runner.model
        model.prompt_type = "visual" if (runner.iter + 1) % self.c < self.v else "text"


class RaiseAt:
    """A modality callable that breaks at one iteration: the hook's own failure, mid-run."""

    def __init__(self, at):
        self.at = at

    def __call__(self, runner, batch_idx, data_batch, outputs):
        if runner.iter == self.at:
            raise RuntimeError(f"planted failure inside the recorder at iteration {runner.iter}")
        model = runner.model.module if hasattr(runner.model, "module") else runner.model
        return model.prompt_type


def build_runner(work_dir, log, spec=SCENARIO, iters=200, accumulative_counts=1, raise_at=None, hook_extra=None):
    hook = dict(type="InterleaveRecorderHook", path=log, spec=spec, modality_attr="prompt_type", seed=0)
    if raise_at is not None:
        hook["modality"] = RaiseAt(raise_at)
    hook.update(hook_extra or {})
    return Runner(
        model=ToyDetector(),
        work_dir=work_dir,
        experiment_name="toy",
        train_dataloader=dict(
            dataset=ToyDataset(),
            sampler=dict(type="InfiniteSampler", shuffle=True),
            batch_size=8,
            num_workers=0,
            collate_fn=dict(type="default_collate"),
        ),
        train_cfg=dict(by_epoch=False, max_iters=iters, val_interval=10**9),
        optim_wrapper=dict(
            type="OptimWrapper",
            optimizer=dict(type="AdamW", lr=4e-4, weight_decay=1e-4),
            paramwise_cfg=dict(
                custom_keys={
                    "backbone": dict(lr_mult=0.01),
                    "language_model": dict(lr_mult=0.01),
                    "neck": dict(lr_mult=0.01),
                }
            ),
            accumulative_counts=accumulative_counts,
        ),
        param_scheduler=[
            dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=WARMUP),
            dict(type="MultiStepLR", by_epoch=False, begin=0, end=iters, milestones=MILESTONES, gamma=0.1),
        ],
        default_hooks=dict(logger=dict(type="LoggerHook", interval=10), checkpoint=None),
        custom_hooks=[PromptTypeSwitchHook(), hook],
        randomness=dict(seed=0),
        launcher="none",
    )


def scalars_path(work_dir):
    """The run's own vis_data/scalars.json (mmengine puts it under a timestamped folder)."""
    for dirpath, _dirs, files in os.walk(work_dir):
        if "scalars.json" in files and os.path.basename(dirpath) == "vis_data":
            return os.path.join(dirpath, "scalars.json")
    return None


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--work-dir", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--spec", default=SCENARIO)
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--accumulative-counts", type=int, default=1)
    ap.add_argument("--raise-at", type=int, default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    runner = build_runner(a.work_dir, a.log, a.spec, a.iters, a.accumulative_counts, a.raise_at)
    runner.train()
    print(json.dumps({"iter": runner.iter, "scalars": scalars_path(a.work_dir)}))


if __name__ == "__main__":
    main()
