"""Where the server has to look like Go: `encoding/json` texts, net/http framing, net addresses.

Leaf modules: they know nothing of proxies, links or toxics, so the rest of the package
depends on them and never the other way round.
"""
