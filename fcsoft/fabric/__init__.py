"""fcsoft.fabric"""
