"""fpscreen's shared library: contracts, services, ports and adapters used by every function (an FC layer).

Light by design: nothing here imports numpy or PyAV, so a function's cold start stays fast.
"""
