"""Next-best offers: eligibility, acceptance, policy, offline evaluation."""
