"""Decoding: one engine for chat, serve and eval (greedy/sampling, image guidance, batching)."""
