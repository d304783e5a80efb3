"""Partner subscriptions: who subscribed to what (models, store), how patterns are scoped to
a tenant (patterns), how deliveries are signed (signing), when they are retried (policy),
and each event's delivery state and attempts (deliveries)."""
