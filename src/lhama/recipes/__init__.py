"""Recipes that build lhama's own models, separate from the library's reusable parts."""
