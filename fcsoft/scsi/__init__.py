"""fcsoft.scsi"""
