"""``python -m cloudflare_durable._cli``: the ``durable`` command."""

from . import main

raise SystemExit(main())
