"""hardware"""
__all__: list[str] = []
