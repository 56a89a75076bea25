"""What a refusal by ``sbatch`` says, in one line with the setting to change (used by the
launcher plugin hydra_plugins.mnistlab_plugins.launcher).

Without this, a sweep that asks the cluster for something it does not have (a GPU on a CPU
partition, a partition that does not exist, more memory than a node has) ended in submitit's
40-line traceback with sbatch's reason on its last line.
"""

from __future__ import annotations

# What sbatch names in its refusal, and the launcher setting that asks for it.
SETTINGS = (
    ("gres", "hydra.launcher.gpus_per_node (null asks for none; hydra/launcher=slurm leaves "
             "GPUs, CPUs and memory to the partition)"),
    ("partition", "hydra.launcher.partition (sinfo lists them)"),
    ("memory", "hydra.launcher.mem_gb"),
    ("cpu", "hydra.launcher.cpus_per_task"),
    ("time limit", "hydra.launcher.timeout_min"),
    ("account", "hydra.launcher.account"),
    ("qos", "hydra.launcher.qos"),
)


def sbatch_refusal(said: str) -> str | None:
    """sbatch's reason in one line with the setting to change; None when ``said`` (submitit's
    error) is not sbatch's refusal."""
    lines = [line.strip() for line in said.splitlines() if line.strip()]
    reason = next((line for line in lines if line.startswith("sbatch: error:")), None)
    if reason is None:
        return None
    reason = reason.removeprefix("sbatch: error:").strip().rstrip(".")
    setting = next((setting for word, setting in SETTINGS if word in reason.lower()),
                   "the hydra.launcher settings (`python train.py -m hydra/launcher=slurm --cfg "
                   "hydra -p hydra.launcher` shows them)")
    return f"SLURM refused the sweep's jobs: {reason}. Fix: change {setting}."
