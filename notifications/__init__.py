"""Apprise routing and zh-CN message templates, fed by the outbox that ``states`` writes."""
