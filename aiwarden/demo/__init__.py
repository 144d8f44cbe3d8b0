"""The demo: generated fraud data, the two fraud models and the live story the server plays.

``synthetic`` makes the data (also useful in tests and notebooks), ``models`` fits the model
versions, ``story`` plays the live loop against a server, ``offline`` prints the engine's story
without one.
"""
