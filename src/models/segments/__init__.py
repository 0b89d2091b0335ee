"""Customer segments: RFM, value and risk, behavioural clusters."""
