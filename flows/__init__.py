"""LangGraph flow builders, discovered through the botcore.flows entry points."""
