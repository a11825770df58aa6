"""fcsoft.target"""
