"""``python -m crm_analytics.cli``: the ``crm`` command."""

from crm_analytics.cli import main

main()
