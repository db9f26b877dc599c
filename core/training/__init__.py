"""Training code (SPEC §6): U-Net pre-training, the colorization GAN with DDP, evaluation tables
and ablations. ``python -m train …`` is the launcher; everything it runs lives here.

Modules: ``config`` (training schedule, resolved run config), ``distributed`` (torchrun, ranks,
reductions), ``state`` (full training-state checkpoints), ``loop`` (the loop both trainings
share), ``segmentation``, ``colorization``, ``ema``, ``data`` (the plane-dataset interface),
``logging`` (progress bar, CSV, TensorBoard), ``samples`` (PNG grids and loss curves),
``lookup`` (the intensity→colour baseline), ``evaluate`` (Table I/II), ``ablation``.
"""
