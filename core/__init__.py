"""mricolor core: volumes, phantom, registration, planes, networks, losses, metrics, training.

No Qt in here: everything in this package runs headless (CI, training clusters).
"""
