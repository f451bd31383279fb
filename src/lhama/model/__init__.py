"""lhama.model"""
