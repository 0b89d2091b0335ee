"""Purchase-history features as of a cutoff (Ibis expressions). Built in issue #3; empty until then."""
