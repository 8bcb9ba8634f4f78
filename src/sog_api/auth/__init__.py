"""Authentication and abuse limits.

Every request passes ``RequestLimits`` (URL and body size) and then ``AuthMiddleware``, which
accepts ``Authorization: Token <key>`` or ``Bearer <key>`` on every path but the public ones
(health probes and the API documentation), records the key's project in ``request.state`` and
applies the per-key rate limit, and the limit on refused authentications per client address.
Being middleware, it guards routes added later too.
"""
