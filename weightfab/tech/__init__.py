"""tech"""
