"""The workflows as data: one module per workflow, and the helpers they share."""
