"""CLV, churn, segment and offer models with MLflow tracking. Built in issue #4 and #5; empty until then."""
