"""Channel adapters: one package per platform, found through the botcore.adapters entry
points."""
