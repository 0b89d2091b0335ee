"""Identity resolution and the unified customer profile (see README "Profiles")."""
