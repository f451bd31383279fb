"""lhama.data"""
