"""timers"""
