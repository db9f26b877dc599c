"""Training: U-Net pre-training, the colorization GAN with DDP, and ablations. ``python -m train …``
is the launcher; everything it runs lives here.

Modules: ``distributed`` (torchrun, ranks, reductions), ``state`` (full training-state
checkpoints), ``loop`` (the loop both trainings share), ``segmentation``, ``colorization``,
``ema``, ``runlog`` (progress bar, CSV, TensorBoard), ``samples`` (PNG grids and loss curves),
``ablation``. Planes come from `core.dataset.plane_data`; scores from `core.evaluation`.
"""
