"""Training recipes, the shared training loop, configs and the ``handpose-train`` CLI."""
