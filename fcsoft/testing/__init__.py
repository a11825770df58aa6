"""fcsoft.testing"""
