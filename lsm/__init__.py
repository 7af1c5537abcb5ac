"""lsm"""
__all__: list[str] = []
