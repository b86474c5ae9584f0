"""signoff"""
