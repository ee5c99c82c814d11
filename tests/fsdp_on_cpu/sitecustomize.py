"""Imported at start-up by every process of a test that puts this folder on PYTHONPATH: lets
accelerate run FSDP on CPU processes (gloo).

accelerate 1.15 turns FSDP on only for GPU-like distributed types; for CPU processes
(MULTI_CPU) it drops the FSDP plugin and the Trainer wraps the model in DDP. torch's FSDP2 itself
runs on CPU with gloo, so the tests keep the plugin where accelerate would drop it and exercise
the sharded path (wrapping, gathering a full state dict to save, checkpoints) without a GPU.
Never used by the project itself."""

import accelerate.state as state
from accelerate.utils import DistributedType

_init = state.AcceleratorState.__init__


def _keep_fsdp_on_cpu(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    plugin = kwargs.get("fsdp_plugin")
    if plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
        # AcceleratorState copies PartialState's type in again each time it is made: set both.
        state.PartialState._shared_state["distributed_type"] = DistributedType.FSDP
        self.distributed_type = DistributedType.FSDP
        self.fsdp_plugin = plugin


state.AcceleratorState.__init__ = _keep_fsdp_on_cpu
