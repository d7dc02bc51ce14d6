"""The prip function's logic: the PRIP/AUXIP OData interface over HTTP.

- routes: the resources, who may use them, error bodies for every refusal
- products: Product JSON; metadata_document: service document and CSDL
- downloads: `$value` streaming, ranges, checksum headers, presigned redirects
- quotas: parallel downloads per user (PostgreSQL advisory locks as slots)
- subscriptions: Subscription bodies and operations; audit: the audit trail entries
- settings: AUXIP_* settings of prip only; service: what a process holds for its life
"""
