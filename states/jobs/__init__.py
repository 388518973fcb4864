"""Batch jobs over the workflows: sweep, materialisation, regulator plans, risk checklists,
checkpoints and replay."""
