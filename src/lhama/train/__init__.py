"""lhama.train"""
