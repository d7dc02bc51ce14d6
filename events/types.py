"""CloudEvent type names: the versioned contract between producers and consumers.

A breaking change to a `data` model gets a new type (`.v2`) beside the old one, so a
producer and its consumers can be deployed one at a time.
"""

PREFIX = "org.auxip"

FILE_ARRIVED = f"{PREFIX}.file.arrived.v1"
FILE_REJECTED = f"{PREFIX}.file.rejected.v1"
PRODUCT_INGESTED = f"{PREFIX}.product.ingested.v1"
PRODUCT_PACKAGED = f"{PREFIX}.product.packaged.v1"
PRODUCT_PUBLISHED = f"{PREFIX}.product.published.v1"
PRODUCT_EVICTED = f"{PREFIX}.product.evicted.v1"
TRANSFER_COMPLETED = f"{PREFIX}.transfer.completed.v1"
TRANSFER_FAILED = f"{PREFIX}.transfer.failed.v1"

# Produced by others, consumed by auxip.
KAFKA_RECORD = "dev.knative.kafka.event"  # KafkaSource wrapping a MinIO notification
PING = "dev.knative.sources.ping"  # PingSource tick (poll, evict, verify)
