"""lhama.serve"""
