"""The edge box: gateway backends, client MAC lookup, radio control, ``doctor``."""
