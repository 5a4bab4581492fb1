"""Drop-ins for the tools agent developers already use, over one engram ``Memory``.

- :mod:`engram.integrations.langgraph` (``pip install 'engram[langgraph]'``):
  ``EngramStore`` (LangGraph ``BaseStore``) and ``EngramSaver`` (``BaseCheckpointSaver``).
- :mod:`engram.integrations.langchain` (``pip install 'engram[langchain]'``):
  ``EngramChatMessageHistory``, ``EngramRetriever`` and ``EngramCache``.

Nothing is imported here, so ``import engram`` never needs either framework.
"""
