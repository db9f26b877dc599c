"""The model definition: configuration, networks, losses, checkpoints and the output catalogue.

Everything needed to build, train-step and store the networks, and nothing about where planes
come from (`core.dataset`) or how a served model sees a plane (`core.inference`).
"""
