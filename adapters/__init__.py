"""Channel adapters, one package per platform, discovered through the botcore.adapters entry points."""
