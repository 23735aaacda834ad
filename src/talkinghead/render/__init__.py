"""Render stage: coefficients → pixels (mesh-driven dense warp, mouth interior, compose)."""
