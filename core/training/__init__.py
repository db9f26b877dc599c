"""Training: U-Net pre-training, the colorization GAN with DDP, and ablations. ``python -m train …``
is the launcher; everything it runs lives here.

Modules: ``distributed`` (torchrun, ranks, reductions), ``task`` (what a training supplies and
the helpers of its step), ``batches`` (resumable data order), ``state`` (full training-state
files), ``checkpointer`` (restore, save, export), ``loop`` (the loop both trainings share),
``segmentation``, ``colorization``, ``ema``, ``runlog`` (progress bar, CSV, TensorBoard),
``samples`` (PNG grids and loss curves), ``ablation``. The run configuration is
`core.model.run_config`; planes come from `core.dataset.plane_data`; scores from `core.evaluation`.
"""
