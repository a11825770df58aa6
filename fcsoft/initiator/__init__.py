"""fcsoft.initiator"""
