"""One training run, as an object: set-up, epochs, steps, validation, checkpoints, export.

:func:`mmsearch.train.trainer.train` is the entry point and documents the behaviour;
this module is its machinery. Needs torch; imported only by training code.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmsearch.eval.datasets import PairSet, read_pairs
from mmsearch.train import checkpoint, data, distributed, methods, shards
from mmsearch.train.config import LOSSES, METHODS, TrainConfig, TrainingError
from mmsearch.train.distributed import DistEnv
from mmsearch.train.export import export_model
from mmsearch.train.losses import clip_loss, pair_positives, siglip_loss
from mmsearch.train.model import ContrastiveModel
from mmsearch.train.result import EpochCallback, TrainResult
from mmsearch.train.schedule import lr_at, micro_batches
from mmsearch.train.towers import load_towers
from mmsearch.train.towers_base import clamp_scale
from mmsearch.train.validate import PairEmbedder, val_score

log = logging.getLogger("mmsearch.train")

RESUME_KEYS = ("data", "base", "method", "loss", "batch_size", "accum")
"""Settings a resumed run must share with the checkpoint it continues."""

AUGMENT_SHIFT = 1 / 16
"""Largest random shift of a training image, as a share of its side (scratch training)."""


def contrastive_loss(
    kind: str,
    img: torch.Tensor,
    txt: torch.Tensor,
    scale: torch.Tensor,
    bias: torch.Tensor | None,
    media_ids: torch.Tensor,
    caption_ids: torch.Tensor,
) -> torch.Tensor:
    """The configured loss over a (global) batch, pairs sharing media or caption as positives."""
    pos = pair_positives(media_ids, caption_ids)
    if kind == "siglip":
        assert bias is not None
        return siglip_loss(img, txt, scale, bias, positives=pos)
    return clip_loss(img, txt, scale, positives=pos)


class Run:
    """Everything one training run holds; ``fit()`` runs it."""

    def __init__(self, config: TrainConfig, env: DistEnv, on_epoch_end: EpochCallback | None):
        self.cfg = config
        self.env = env
        self.on_epoch_end = on_epoch_end
        self.out = Path(config.out).expanduser()
        self.t0 = time.perf_counter()
        if config.threads:
            torch.set_num_threads(config.threads)
        _seed(config.seed)
        self._read_data()
        towers = load_towers(config.base, captions=self._vocab_captions(), loss=config.loss)
        options = methods.MethodOptions(config.lora_rank, config.lora_alpha, config.adapter_rank)
        self.model: ContrastiveModel = methods.build(towers, config.method, config.loss, options)
        self.model.to(env.device)
        augment = config.augment if config.augment is not None else config.scratch
        self.transform = data.ImageTransform(
            towers.preprocessor(), AUGMENT_SHIFT if augment else 0.0, config.seed
        )
        self.eval_transform = data.ImageTransform(towers.preprocessor())
        self.tokenize = towers.tokenizer()
        self.collate = data.Collate(self.tokenize)
        self._setup_steps()
        self._setup_optimizer()
        self.ddp: Any = self.model
        if env.distributed:
            ids = [torch.device(env.device).index] if env.device.startswith("cuda") else None
            self.ddp = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        self.epoch, self.step, self.best, self.bad_epochs = 0, 0, -float("inf"), 0
        self.best_epoch: int | None = None
        self.history: list[dict[str, Any]] = []
        self.stopped_early = False
        if config.resume:
            self._resume()

    # -- set-up ------------------------------------------------------------------------------
    def _read_data(self) -> None:
        cfg = self.cfg
        self.shard_paths: list[str] | None = None
        self.train_pairs: PairSet | None = None
        self.val_pairs: PairSet | None
        self.val_fraction = cfg.val_split
        if shards.is_tar_source(cfg.data):
            self.shard_paths = shards.expand_shards(cfg.data)
            fraction = 0.0 if cfg.val_data else cfg.val_split
            self.val_pairs = (
                read_pairs(cfg.val_data, split="val", root=cfg.data_root)
                if cfg.val_data
                else shards.tar_validation_set(self.shard_paths, fraction)
            )
            self.val_fraction = fraction
            return
        self.train_pairs, self.val_pairs = data.read_training_pairs(
            cfg.data,
            split=cfg.data_split,
            root=cfg.data_root,
            val_data=cfg.val_data,
            val_split=cfg.val_split,
            seed=cfg.seed,
        )

    def _vocab_captions(self) -> list[str] | None:
        if self.train_pairs is not None:
            return list(self.train_pairs.captions)
        assert self.shard_paths is not None
        if not self.cfg.scratch:
            return None  # subword vocabularies need no captions; word-level ones keep theirs
        reader = shards.TarPairs(
            self.shard_paths, data.ImageTransform(_identity), val_fraction=self.val_fraction
        )
        return [caption for _, _, caption in reader.pairs()]

    def _setup_steps(self) -> None:
        cfg, env = self.cfg, self.env
        per_step = cfg.batch_size * cfg.accum * env.world
        if self.train_pairs is not None:
            self.dataset: Any = data.PairDataset(self.train_pairs, self.transform)
            n = len(self.dataset)
        else:
            assert self.shard_paths is not None
            self.dataset = shards.TarPairs(
                self.shard_paths,
                self.transform,
                val_fraction=self.val_fraction,
                world=env.world,
                rank=env.rank,
                seed=cfg.seed,
            )
            n = self.dataset.count()
        self.n_train = n
        self.steps_per_epoch = n // per_step
        if self.steps_per_epoch == 0:
            raise TrainingError(
                f"{n} training pairs are fewer than one step's batch ({per_step} = batch size "
                f"{cfg.batch_size} x accum {cfg.accum} x {env.world} processes)"
            )
        total = cfg.epochs * self.steps_per_epoch
        self.total_steps = min(total, cfg.max_steps) if cfg.max_steps else total
        self.warmup = cfg.warmup_steps if cfg.warmup_steps is not None else max(1, total // 20)

    def _setup_optimizer(self) -> None:
        decay: list[torch.nn.Parameter] = []
        no_decay: list[torch.nn.Parameter] = []
        for name, p in self.model.named_parameters():
            if not p.requires_grad:
                continue
            small = p.ndim < 2 or "logit" in name or name.endswith(("bias", "temperature"))
            (no_decay if small else decay).append(p)
        if not decay and not no_decay:
            raise TrainingError("nothing to train: the method left no trainable weight")
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": self.cfg.weight_decay},
             {"params": no_decay, "weight_decay": 0.0}],
            lr=self.cfg.effective_lr, betas=(0.9, 0.98), eps=1e-6,
        )  # fmt: skip
        cuda = self.env.device.startswith("cuda") and self.cfg.amp
        self.amp_dtype = (
            (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if cuda else None
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)

    def autocast(self) -> Any:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.amp_dtype)

    # -- checkpoints ---------------------------------------------------------------------------
    def _ckpt(self, name: str) -> Path:
        return checkpoint.folder(self.out) / name

    def _save_checkpoint(self) -> None:
        if self.env.is_main:
            state = {
                "epoch": self.epoch,
                "step": self.step,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(),
                "best": self.best,
                "best_epoch": self.best_epoch,
                "bad_epochs": self.bad_epochs,
                "history": self.history,
                "stopped_early": self.stopped_early,
                "rng": checkpoint.rng_state(self.env.device),
                "config": self.cfg.to_dict(),
            }
            checkpoint.save_atomic(state, self._ckpt(checkpoint.LAST))
        distributed.barrier(self.env)

    def _resume(self) -> None:
        path = self._ckpt(checkpoint.LAST)
        if not path.is_file():
            log.warning("no checkpoint at %s; starting from the beginning", path)
            return
        state = checkpoint.load(path)
        saved = state.get("config", {})
        for key in RESUME_KEYS:
            if saved.get(key) != getattr(self.cfg, key):
                raise TrainingError(
                    f"{path} is the checkpoint of another run ({key} {saved.get(key)!r}, now "
                    f"{getattr(self.cfg, key)!r}); use another --out or leave out --resume"
                )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.best, self.best_epoch = float(state["best"]), state["best_epoch"]
        self.bad_epochs, self.history = int(state["bad_epochs"]), list(state["history"])
        self.stopped_early = bool(state.get("stopped_early", False))
        checkpoint.set_rng_state(state["rng"], self.env.device)
        log.info("resumed from %s at epoch %d, step %d", path, self.epoch, self.step)

    # -- the loop ------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        cfg = self.cfg
        self._log_start()
        while self.epoch < cfg.epochs and not self._done():
            loss = self._train_epoch()
            record: dict[str, Any] = {"epoch": self.epoch + 1, "step": self.step, "loss": loss,
                                      "lr": self.optimizer.param_groups[0]["lr"],
                                      "seconds": round(time.perf_counter() - self.t0, 1)}  # fmt: skip
            record.update(self._validate_and_track())
            self.epoch += 1
            self.history.append(record)
            self._save_checkpoint()
            if self.on_epoch_end is not None:
                self.on_epoch_end(record)
        return self._finish()

    def _done(self) -> bool:
        return self.stopped_early or (
            self.cfg.max_steps is not None and self.step >= self.total_steps
        )

    def _log_start(self) -> None:
        if not self.env.is_main:
            return
        counts = methods.trainable_summary(self.model)
        log.info("training %s (%s, %s loss): %d of %d weights trainable; %d pairs, %d steps/epoch",
                 self.cfg.base, self.cfg.method, self.cfg.loss, counts["trainable"],
                 counts["total"], self.n_train, self.steps_per_epoch)  # fmt: skip

    def _epoch_loader(self, attempt: int) -> Iterator[data.Batch]:
        cfg, env = self.cfg, self.env
        self.dataset.epoch = self.epoch + 1000 * attempt
        pin = env.device.startswith("cuda")
        if isinstance(self.dataset, data.PairDataset):
            plan = data.batch_plan(len(self.dataset), cfg.batch_size, cfg.accum, env.world,
                                   env.rank, cfg.seed, self.dataset.epoch)  # fmt: skip
            return iter(data.loader(self.dataset, self.collate, workers=cfg.workers,
                                    batches=plan, pin_memory=pin))  # fmt: skip
        return iter(data.loader(self.dataset, self.collate, workers=cfg.workers,
                                batch_size=cfg.batch_size, pin_memory=pin))  # fmt: skip

    def _train_epoch(self) -> float:
        cfg = self.cfg
        self.model.train()
        count = self.steps_per_epoch * cfg.accum
        batches = micro_batches(self._epoch_loader, count)
        losses: list[float] = []
        group: list[data.Batch] = []
        for batch in batches:
            group.append(batch.to(self.env.device))
            if len(group) < cfg.accum:
                continue
            losses.append(self._step(group))
            group = []
            if self.env.is_main and (self.step % cfg.log_every == 0):
                log.info("epoch %d step %d/%d loss %.4f lr %.2e scale %.1f", self.epoch + 1,
                         self.step, self.total_steps, losses[-1],
                         self.optimizer.param_groups[0]["lr"], self._scale())  # fmt: skip
            if self._done():
                break
        return float(np.mean(losses)) if losses else float("nan")

    def _scale(self) -> float:
        return float(self.model.logit_terms()[0].detach())

    def _step(self, group: list[data.Batch]) -> float:
        cfg = self.cfg
        lr = lr_at(self.step, self.total_steps, cfg.effective_lr, self.warmup, cfg.min_lr_ratio)
        for g in self.optimizer.param_groups:
            g["lr"] = lr
        loss = self._direct(group[0]) if len(group) == 1 else self._cached(group)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        clamp_scale(self.model.parts, self.model.scale_param())
        self.step += 1
        return loss

    def _global(self, batch_img: torch.Tensor, batch_txt: torch.Tensor, media: torch.Tensor,
                captions: torch.Tensor) -> tuple[torch.Tensor, ...]:  # fmt: skip
        env = self.env
        return (
            distributed.gather_with_grad(batch_img, env),
            distributed.gather_with_grad(batch_txt, env),
            distributed.gather(media, env),
            distributed.gather(captions, env),
        )

    def _direct(self, batch: data.Batch) -> float:
        with self.autocast():
            img, txt, scale, bias = self.ddp(batch.pixels, batch.text)
        img_all, txt_all, media, caps = self._global(img, txt, batch.media_ids, batch.caption_ids)
        loss = contrastive_loss(self.cfg.loss, img_all.float(), txt_all.float(), scale, bias,
                                media, caps)  # fmt: skip
        self.scaler.scale(loss).backward()
        return float(loss.detach())

    def _cached(self, group: list[data.Batch]) -> float:
        """One step over several micro-batches with the big-batch loss (feature cache)."""
        device = self.env.device
        states, imgs, txts = [], [], []
        bn = _batchnorm_buffers(self.model)
        with torch.no_grad():
            for b in group:
                states.append(_rng_snapshot(device))
                with self.autocast():
                    img, txt, _, _ = self.model(b.pixels, b.text)
                imgs.append(img.float())
                txts.append(txt.float())
        _restore(bn)
        img_c = torch.cat(imgs).requires_grad_(True)
        txt_c = torch.cat(txts).requires_grad_(True)
        scale, bias = self.model.logit_terms()
        scale_leaf = scale.detach().requires_grad_(True)
        bias_leaf = bias.detach().requires_grad_(True) if bias is not None else None
        media = torch.cat([b.media_ids for b in group])
        caps = torch.cat([b.caption_ids for b in group])
        img_all, txt_all, media_all, caps_all = self._global(img_c, txt_c, media, caps)
        loss = contrastive_loss(self.cfg.loss, img_all, txt_all, scale_leaf, bias_leaf,
                                media_all, caps_all)  # fmt: skip
        loss.backward()
        assert img_c.grad is not None and txt_c.grad is not None and scale_leaf.grad is not None
        sizes = [len(b) for b in group]
        g_img, g_txt = img_c.grad.split(sizes), txt_c.grad.split(sizes)
        n = len(group)
        for i, b in enumerate(group):
            _rng_restore(states[i], device)
            last = i == n - 1
            sync = (
                contextlib.nullcontext()
                if (last or not self.env.distributed)
                else self.ddp.no_sync()
            )
            with sync:
                with self.autocast():
                    img, txt, s, bb = self.ddp(b.pixels, b.text)
                surrogate = (img * g_img[i]).sum() + (txt * g_txt[i]).sum()
                surrogate = surrogate + s * (scale_leaf.grad / n)
                if bb is not None and bias_leaf is not None and bias_leaf.grad is not None:
                    surrogate = surrogate + bb * (bias_leaf.grad / n)
                self.scaler.scale(surrogate).backward()
        return float(loss.detach())

    # -- validation and early stopping ---------------------------------------------------------
    def _validate_and_track(self) -> dict[str, Any]:
        metrics: dict[str, float] | None = None
        if self.val_pairs is not None and self.env.is_main:
            embedder = PairEmbedder(
                self.model, self.eval_transform, self.tokenize,
                device=self.env.device, batch_size=max(64, self.cfg.batch_size),
                workers=self.cfg.workers, autocast=self.autocast,
            )  # fmt: skip
            metrics = embedder.metrics(self.val_pairs, self.cfg.ks)
        metrics = distributed.broadcast_object(metrics, self.env)
        if metrics is None:
            return {}
        score = val_score(metrics, self.cfg.ks)
        record: dict[str, Any] = {"val": metrics, "val_score": score}
        if score > self.best + 1e-9:
            self.best, self.best_epoch, self.bad_epochs = score, self.epoch + 1, 0
            if self.env.is_main:
                checkpoint.save_atomic(self.model.state_dict(), self._ckpt(checkpoint.BEST))
        else:
            self.bad_epochs += 1
            if self.cfg.patience is not None and self.bad_epochs >= self.cfg.patience:
                self.stopped_early = True
                record["stopped_early"] = True
        if self.env.is_main:
            ks = self.cfg.ks
            log.info("epoch %d validation: %s; score %.4f%s", self.epoch + 1,
                     " ".join(f"{d}_R@{k} {metrics[f'{d}_R@{k}']:.3f}"
                              for d in ("t2m", "m2t") for k in ks),
                     score, " (stopping early)" if self.stopped_early else "")  # fmt: skip
        return record

    # -- the end -------------------------------------------------------------------------------
    def _finish(self) -> TrainResult:
        best_path = self._ckpt(checkpoint.BEST)
        if self.best_epoch is not None and best_path.is_file():
            self.model.load_state_dict(checkpoint.load(best_path))
        metrics = self._best_metrics()
        card: dict[str, Any] = {}
        if self.env.is_main:
            card = export_model(self.model, self.out, self._card(metrics))
            log.info("wrote %s (%s)", self.out, card["model_id"])
        distributed.barrier(self.env)
        return TrainResult(
            out=self.out,
            card=card,
            metrics=metrics,
            history=self.history,
            epochs=self.epoch,
            steps=self.step,
            stopped_early=self.stopped_early,
            seconds=time.perf_counter() - self.t0,
        )

    def _best_metrics(self) -> dict[str, float]:
        for record in self.history:
            if record.get("epoch") == self.best_epoch:
                return dict(record.get("val", {}))
        return {}

    def _card(self, metrics: dict[str, float]) -> dict[str, Any]:
        cfg, env = self.cfg, self.env
        info = self.model.towers.base_info
        base = {"spec": cfg.base}
        if info is not None:
            base.update(model_id=info.model_id, fingerprint=info.fingerprint)
        val_desc = (
            f"{cfg.val_data}" if cfg.val_data
            else f"{cfg.val_split:.0%} of the media held out (seed {cfg.seed})"
            if self.val_pairs is not None else "none"
        )  # fmt: skip
        return {
            "base": base,
            "method": cfg.method,
            "method_description": METHODS[cfg.method],
            "loss": cfg.loss,
            "loss_description": LOSSES[cfg.loss],
            "data": {
                "source": cfg.data,
                "train_pairs": self.n_train,
                "train_media": self.train_pairs.n_media if self.train_pairs else None,
                "validation": val_desc,
                "val_pairs": self.val_pairs.n_captions if self.val_pairs else 0,
                "val_media": self.val_pairs.n_media if self.val_pairs else 0,
            },
            "epochs_run": self.epoch,
            "epochs_planned": cfg.epochs,
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            "steps": self.step,
            "batch": {
                "per_process": cfg.batch_size,
                "accum": cfg.accum,
                "processes": env.world,
                "contrastive_batch": cfg.batch_size * cfg.accum * env.world,
            },  # fmt: skip
            "lr": cfg.effective_lr,
            "params": methods.trainable_summary(self.model),
            "validation": metrics,
            "val_score": self.best if self.best_epoch is not None else None,
            "ks": list(cfg.ks),
            "history": self.history,
            "seconds": round(time.perf_counter() - self.t0, 1),
            "device": env.device if env.world == 1 else f"{env.world} x {env.device.split(':')[0]}",
            "config": cfg.to_dict(),
        }


def _identity(image: Any) -> Any:
    return image


def _seed(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rng_snapshot(device: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    cuda = torch.cuda.get_rng_state(device) if device.startswith("cuda") else None
    return torch.get_rng_state(), cuda


def _rng_restore(state: tuple[torch.Tensor, torch.Tensor | None], device: str) -> None:
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state(state[1], device)


def _batchnorm_buffers(model: torch.nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Copies of batch-norm running statistics (the cache pass must not update them twice)."""
    out = []
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            for buf in (module.running_mean, module.running_var, module.num_batches_tracked):
                if buf is not None:
                    out.append((buf, buf.detach().clone()))
    return out


def _restore(saved: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    with torch.no_grad():
        for buf, copy in saved:
            buf.copy_(copy)
