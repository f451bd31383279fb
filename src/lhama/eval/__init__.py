"""lhama.eval"""
