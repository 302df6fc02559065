"""Mixed-precision training on any device (``SOLVER.AMP.ENABLED``, ``SOLVER.AMP.DTYPE``).

detectron2's ``AMPTrainer`` runs ``torch.cuda.amp.autocast`` and asserts CUDA, so ``SOLVER.AMP.ENABLED``
stops a CPU run at its first step. ``AutocastTrainer`` is that trainer with ``torch.autocast`` on the
model's device type and a dtype: bfloat16 (the CPU's and recent GPUs' choice, float32's range: no loss
scaling) or float16 (with a ``torch.amp.GradScaler``, whose state goes into checkpoints as AMPTrainer's).
SNA's power iteration runs in float32 inside autocast (``SpectralNormAttention.attention_map``).
"""

from __future__ import annotations

import time

import torch
from detectron2.engine import AMPTrainer
from detectron2.utils.events import get_event_storage

from ..solver.amp import AMP_DTYPES, amp_dtype

__all__ = ["AMP_DTYPES", "AutocastTrainer", "amp_dtype"]  # the dtypes: sna_det.solver.amp


class AutocastTrainer(AMPTrainer):
    """``AMPTrainer`` whose step runs under ``torch.autocast(device_type, dtype)``; gradients are scaled
    (``torch.amp.GradScaler``) for float16 only."""

    def __init__(self, model, data_loader, optimizer, *, device_type: str, dtype: torch.dtype, **kwargs):
        """``model``, ``data_loader``, ``optimizer`` and ``kwargs`` as ``AMPTrainer``; ``device_type``
        "cpu" or "cuda" (the model's), ``dtype`` torch.bfloat16 or torch.float16."""
        scaler = torch.amp.GradScaler(device_type, enabled=dtype == torch.float16)
        super().__init__(model, data_loader, optimizer, grad_scaler=scaler, precision=dtype, **kwargs)
        self.device_type = device_type

    def run_step(self):
        """One iteration: forward and losses under autocast, scaled backward, optimizer step."""
        assert self.model.training, "[AutocastTrainer] model was changed to eval mode!"
        start = time.perf_counter()
        data = next(self._data_loader_iter)
        data_time = time.perf_counter() - start

        if self.zero_grad_before_forward:
            self.optimizer.zero_grad()
        with torch.autocast(device_type=self.device_type, dtype=self.precision):
            loss_dict = self.model(data)
            if isinstance(loss_dict, torch.Tensor):
                losses, loss_dict = loss_dict, {"total_loss": loss_dict}
            else:
                losses = sum(loss_dict.values())
        if not self.zero_grad_before_forward:
            self.optimizer.zero_grad()

        self.grad_scaler.scale(losses).backward()
        if self.log_grad_scaler and self.grad_scaler.is_enabled():
            get_event_storage().put_scalar("[metric]grad_scaler", self.grad_scaler.get_scale())
        self.after_backward()
        if self.async_write_metrics:
            self.concurrent_executor.submit(self._write_metrics, loss_dict, data_time, iter=self.iter)
        else:
            self._write_metrics(loss_dict, data_time)
        self.grad_scaler.step(self.optimizer)
        self.grad_scaler.update()

    def load_state_dict(self, state_dict):
        """As AMPTrainer's; a checkpoint without a scaler state (saved without AMP) keeps the fresh scaler."""
        super(AMPTrainer, self).load_state_dict(state_dict)
        if state_dict.get("grad_scaler"):
            self.grad_scaler.load_state_dict(state_dict["grad_scaler"])
