"""The training launcher: ``python -m train …`` or ``torchrun … -m train …``.

Thin on purpose: it parses the command line, resolves a preset with its overrides and
calls ``core.training``, where the loops, DDP and checkpointing live.
"""
