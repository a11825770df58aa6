"""fcsoft.server"""
