"""The undying SDK: write Restate-compatible services in Python."""
