"""Operating the gateway: metrics, tracing, the audit trail, kill switches, SLO and drift alerts,
alert delivery and retention. ``operations.Ops`` bundles what one app runs of them."""
