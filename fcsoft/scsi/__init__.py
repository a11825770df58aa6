"""The logical unit: commands, sense, unit attentions, reservations, masking, backing
stores. Sans-IO and synchronous; see types.py for how the target port drives it."""
