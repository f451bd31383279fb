"""The default model's own training mix: Tux Paint splits, emoji, clips, speech pairs, video pairs."""
