"""The LightningModules: thin, they receive built parts (generator, losses, optimiser recipes, the
curriculum) and only say how one step goes. The generator is called through the runner, which
hides the hole, so no recipe can train on the answer."""

from __future__ import annotations

import time
from pathlib import Path

import lightning as L
import torch
from torch import nn

from inpaintkit import metrics, runner
from inpaintkit.errors import InpaintError
from inpaintkit.losses import AdversarialLoss, Criterion
from inpaintkit.tasks import Task
from inpaintkit.training.curriculum import Curriculum
from inpaintkit.training.optim import OptimizerRecipe, SchedulerRecipe


class InpaintModule(L.LightningModule):
    """Supervised training of a generator with a weighted loss recipe.

    ``recipe`` (the whole training recipe as a dict) is stored in every checkpoint, so a checkpoint
    rebuilds its generator (:func:`inpaintkit.training.load_checkpoint`)."""

    def __init__(
        self,
        generator: nn.Module,
        criterion: Criterion,
        task: Task,
        optimizer: OptimizerRecipe,
        scheduler: SchedulerRecipe,
        recipe: dict,
        curriculum: Curriculum | None = None,
        grad_clip: float = 0.0,
        channels_last: bool = False,
    ):
        super().__init__()
        self.save_hyperparameters({"config": recipe})
        self.generator, self.criterion, self.task = generator, criterion, task
        self.optimizer_recipe, self.scheduler_recipe = optimizer, scheduler
        self.curriculum = curriculum
        self.grad_clip = grad_clip
        self.channels_last = channels_last
        self.strict_loading = False  # the frozen VGG of perceptual losses is not checkpointed
        self.run_dir: Path | None = None
        self._last_batch_time: float | None = None

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return runner.forward(self.generator, image, mask)

    def on_fit_start(self) -> None:
        if self.channels_last:
            self.to(memory_format=torch.channels_last)

    def _layout(self, batch):
        """The batch in the model's memory format (channels-last when the recipe asks)."""
        if self.channels_last:
            return [t.contiguous(memory_format=torch.channels_last) for t in batch]
        return batch

    def _batch(self, batch):
        """``(input, target, mask, curriculum levels or None)``; the curriculum replaces the masks."""
        source, target, mask = self._layout(batch)
        if self.curriculum is None:
            return source, target, mask, None
        holes, levels = self.curriculum.masks(source.shape[-1], int(self.global_step))
        return source, target, holes.to(source), levels

    def _after_step(self, pred, image, mask, levels, terms, total) -> None:
        if not torch.isfinite(total):
            raise InpaintError(
                f"the loss became {float(total)} at step {self.global_step}; the last good checkpoint is kept "
                "(lower the learning rate or enable grad_clip)"
            )
        now = time.perf_counter()
        if self._last_batch_time is not None:
            self.log("img_per_s", image.shape[0] / (now - self._last_batch_time), prog_bar=True)
        self._last_batch_time = now
        self.log("train/loss", total.detach(), prog_bar=True)
        self.log_dict({f"train/{k}": v.detach() for k, v in terms.items()})
        if levels is not None:
            with torch.no_grad():
                psnr = metrics.psnr(runner.composite(pred, image, mask), image)
            self.curriculum.update(levels, psnr)
            for i, (p, c) in enumerate(zip(self.curriculum.psnr, self.curriculum.counts(), strict=True)):
                self.log(f"curriculum/psnr_level{i + 1}", float(p if p is not None else 0.0))
                self.log(f"curriculum/count_level{i + 1}", float(c))

    def training_step(self, batch, batch_idx):
        source, target, mask, levels = self._batch(batch)
        pred = self(source, mask)
        total, terms = self.criterion(pred, target, mask)
        self._after_step(pred, target, mask, levels, terms, total)
        return total

    def validation_step(self, batch, batch_idx):
        source, target, mask = self._layout(batch)
        pred = self(source, mask)
        total, _ = self.criterion(pred, target, mask)
        result = runner.finish(pred, source, mask, self.task.name)
        n = source.shape[0]
        self.log("val/loss", total, batch_size=n, sync_dist=True)
        self.log("val/psnr", metrics.psnr(result, target).mean(), batch_size=n, prog_bar=True, sync_dist=True)
        self.log("val/ssim", metrics.ssim(result, target).mean(), batch_size=n, sync_dist=True)
        if batch_idx == 0 and self.trainer.is_global_zero:
            self._save_samples(source, target, mask, result)

    def _save_samples(self, source, target, mask, result) -> None:
        from inpaintkit.inference import to_uint8
        from inpaintkit.io import write_image
        from inpaintkit.visual import sample_grid, show_hole

        def rgb(x: torch.Tensor):
            return to_uint8(x.expand(3, -1, -1))

        rows = []
        for i in range(min(8, source.shape[0])):
            if self.task.composite:
                original, hole = to_uint8(source[i]), (mask[i, 0] > 0.5).cpu().numpy()
                rows.append([original, show_hole(original, hole), to_uint8(result[i])])
            else:
                rows.append([rgb(source[i]), rgb(target[i]), rgb(result[i])])
        grid = sample_grid(rows, cell=min(128, source.shape[-1]))
        if self.run_dir is not None:
            write_image(self.run_dir / "samples" / f"step-{self.global_step:07d}.png", grid)
        experiment = getattr(self.logger, "experiment", None)
        if hasattr(experiment, "add_image"):  # TensorBoard
            experiment.add_image("val/original_masked_output", grid, self.global_step, dataformats="HWC")

    def configure_optimizers(self):
        opt = self.optimizer_recipe.build(self.generator.parameters())
        scheduler = self.scheduler_recipe.build(opt)
        return opt if scheduler is None else {"optimizer": opt, "lr_scheduler": scheduler}

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        self._clip(optimizer)

    def _clip(self, optimizer) -> None:
        if self.grad_clip > 0:
            self.clip_gradients(optimizer, gradient_clip_val=self.grad_clip, gradient_clip_algorithm="norm")

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if ".vgg." not in k}
        if self.curriculum is not None:
            checkpoint["curriculum"] = self.curriculum.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if self.curriculum is not None and "curriculum" in checkpoint:
            self.curriculum.load_state_dict(checkpoint["curriculum"])

    def on_train_epoch_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None:
            datamodule.train_set.set_epoch(self.current_epoch)


class AdversarialModule(InpaintModule):
    """Generator and PatchGAN critic with manual optimisation: a generator step on the recipe's
    terms plus the adversarial ones, then a critic step on detached fakes. The critic judges the
    finished result (composited when inpainting) and sees the condition, so only the fill is at stake."""

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        criterion: Criterion,
        adversarial: AdversarialLoss,
        task: Task,
        optimizer: OptimizerRecipe,
        d_optimizer: OptimizerRecipe,
        scheduler: SchedulerRecipe,
        recipe: dict,
        **kwargs,
    ):
        super().__init__(generator, criterion, task, optimizer, scheduler, recipe, **kwargs)
        self.automatic_optimization = False
        self.discriminator, self.adversarial, self.d_optimizer_recipe = discriminator, adversarial, d_optimizer

    def training_step(self, batch, batch_idx):
        opt_g, opt_d = self.optimizers()
        source, image, mask, levels = self._batch(batch)
        condition = mask if self.task.composite else source

        with self.toggled_optimizer(opt_g):
            pred = self(source, mask)
            fake = runner.composite(pred, source, mask) if self.task.composite else pred
            total, terms = self.criterion(pred, image, mask)
            gan_total, gan_terms = self.adversarial.generator(self.discriminator, fake, image, condition)
            total, terms = total + gan_total, {**terms, **gan_terms}
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(total)
            self._clip(opt_g)
            opt_g.step()

        with self.toggled_optimizer(opt_d):
            d_loss, d_terms = self.adversarial.discriminator(self.discriminator, image, fake, condition)
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            self._clip(opt_d)
            opt_d.step()
        self._after_step(pred, image, mask, levels, {**terms, **d_terms}, total)

    def on_train_epoch_end(self) -> None:
        schedulers = self.lr_schedulers()
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers] if schedulers else []:
            scheduler.step()

    def configure_optimizers(self):
        opt_g = self.optimizer_recipe.build(self.generator.parameters())
        opt_d = self.d_optimizer_recipe.build(self.discriminator.parameters())
        schedulers = [self.scheduler_recipe.build(o) for o in (opt_g, opt_d)]
        if schedulers[0] is None:
            return [opt_g, opt_d]
        return [opt_g, opt_d], schedulers
