"""Scoring checkpoints against the phantom's truth and the reference rows (lookup tables, tissue
oracle): used by training (checkpoint and output choice) and by ``mricolor evaluate``."""
