"""Deliberately broken copies of the deployment: every kind of mistake is reported, naming
the object and what is wrong."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from deployment import check, generate, kustomize
from deployment.paths import Tree


def problems(tree: Tree, overlay: str = "local") -> str:
    """The check's report after `make manifests`: only the breakage itself is left."""
    try:
        check.write_manifests(tree, (overlay,))
    except kustomize.KustomizeError:
        generate.write(tree)
    return check.run(tree, (overlay,)).text()


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def add_resource(tree: Tree, name: str, text: str) -> None:
    (tree.base / name).write_text(text)
    edit(tree.base / "kustomization.yaml", "resources:\n", f"resources:\n  - {name}\n")


TRIGGER = """\
apiVersion: eventing.knative.dev/v1
kind: Trigger
metadata: {name: stray, namespace: auxip}
spec:
  broker: default
  filters: [{exact: {type: %s}}]
  subscriber:
    ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: %s}
"""


def test_the_unbroken_copy_is_clean(tree_copy):
    assert problems(tree_copy) == ""


def test_trigger_to_a_missing_service(tree_copy):
    add_resource(tree_copy, "stray.yaml", TRIGGER % ("org.auxip.product.published.v1", "nowhere"))
    assert "Trigger auxip/stray: spec.subscriber.ref: no Service auxip/nowhere" in problems(tree_copy)


def test_trigger_on_an_unknown_event_type(tree_copy):
    add_resource(tree_copy, "stray.yaml", TRIGGER % ("org.auxip.product.vanished.v1", "notify"))
    assert "event type 'org.auxip.product.vanished.v1' is not one events/ defines" in problems(tree_copy)


def test_function_subscribing_to_an_unknown_event_type(tree_copy):
    edit(tree_copy.spec_file, "- type: org.auxip.product.packaged.v1",
         "- type: org.auxip.product.packagd.v1")
    found = problems(tree_copy)
    assert "Trigger auxip/publish-product-packagd: spec.filters: event type 'org.auxip.product.packagd.v1'" in found
    assert "event type org.auxip.product.packaged.v1 is produced but no Trigger consumes it" in found


def test_trigger_on_a_terminal_event_type(tree_copy):
    add_resource(tree_copy, "stray.yaml", TRIGGER % ("org.auxip.file.rejected.v1", "notify"))
    assert "consumes org.auxip.file.rejected.v1, which events/registry.py declares TERMINAL" in problems(tree_copy)


def test_unknown_field_in_a_knative_service(tree_copy):
    edit(tree_copy.overlay("local") / "kustomization.yaml", "patches:\n", """patches:
  - target: {group: serving.knative.dev, kind: Service, name: ingest}
    patch: |-
      - {op: add, path: /spec/template/spec/containers/0/imagePullPolicyy, value: Always}
""")
    assert ("Service auxip/ingest: spec.template.spec.containers[0].imagePullPolicyy: unknown field"
            in problems(tree_copy))


def test_unknown_field_in_the_broker(tree_copy):
    edit(tree_copy.base / "broker.yaml", "  delivery:\n", "  deliveryy:\n")
    assert "Broker auxip/default: spec.deliveryy: unknown field" in problems(tree_copy)


def test_wrong_type_in_a_ping_source(tree_copy):
    edit(tree_copy.spec_file, 'cron: "* * * * *"\n        data: \'{"sweep": "folders"}\'',
         'cron: "* * * * *"\n        timezone: Europe/Rome\n        data: \'{"sweep": "folders"}\'')
    assert problems(tree_copy) == ""  # a valid field passes...
    path = tree_copy.base / "sources.yaml"
    document = next(yaml.safe_load_all(path.read_text()))
    document["spec"]["schedule"] = ["* * * * *"]
    text = yaml.safe_dump(document)
    (tree_copy.base / "broken-sources.yaml").write_text(text.replace("name: ingest-sweep", "name: broken-sweep"))
    edit(tree_copy.base / "kustomization.yaml", "resources:\n", "resources:\n  - broken-sources.yaml\n")
    assert re.search(r"PingSource auxip/broken-sweep: spec\.schedule: Input should be a valid string",
                     problems(tree_copy))


def test_misspelt_kafka_source_field(tree_copy):
    edit(tree_copy.base / "kafka-source.yaml", "  topics:", "  topic:")
    found = problems(tree_copy)
    assert "KafkaSource auxip/minio-inbox: spec: 'topics' is a required property" in found
    assert "Additional properties are not allowed ('topic' was unexpected)" in found


def test_cpu_in_whole_cores(tree_copy):
    edit(tree_copy.spec_file, "cpu: {request: 100m, limit: 1000m}", 'cpu: {request: 100m, limit: "1"}')
    assert "resources.limits.cpu: write CPU in millicores" in problems(tree_copy)


def test_real_looking_secret(tree_copy):
    edit(tree_copy.overlay("local") / "secret.yaml", "AUXIP_S3_SECRET_KEY: change-me",
         "AUXIP_S3_SECRET_KEY: wJalrXUtnFEMI")
    assert "Secret auxip/auxip-secrets: stringData.AUXIP_S3_SECRET_KEY: 'wJalrXUtnFEMI' does not match" \
        in problems(tree_copy)


def test_credentials_in_the_config_map_and_unknown_settings(tree_copy):
    edit(tree_copy.base / "config.yaml", "\ndata:\n",
         "\ndata:\n  AUXIP_S3_SECRET_KEY: x\n  AUXIP_S3_ENDPIONT: http://x\n")
    found = problems(tree_copy)
    assert "ConfigMap auxip/auxip-config: data: 'AUXIP_S3_SECRET_KEY' should not be valid" in found
    assert "data.AUXIP_S3_ENDPIONT is no setting of shared/adapters/settings.py" in found


def test_missing_secret_without_a_schema(tree_copy):
    (tree_copy.schemas / "Secret-auxip-secrets.json").unlink()
    found = problems(tree_copy, "production")
    assert "no Secret auxip/auxip-secrets among the manifests" in found
    assert "no model for v1 Secret" not in found  # production renders no Secret at all


def test_namespace_moved_without_the_broker_config(tree_copy):
    edit(tree_copy.overlay("production") / "kustomization.yaml", "namespace: auxip", "namespace: auxip-prod")
    # The overlay's patches still select `namespace: auxip` (patches apply before the
    # overlay's namespace), so only the Broker's reference to its config is left behind.
    assert ("Broker auxip-prod/default: spec.config: no ConfigMap auxip/kafka-broker-config"
            in problems(tree_copy, "production"))


def test_function_folder_without_service_and_service_without_folder(tree_copy):
    (tree_copy.root / "functions" / "canary").mkdir()
    (tree_copy.root / "functions" / "canary" / "main.py").write_text("")
    (tree_copy.root / "functions" / "prip" / "main.py").unlink()
    found = check.run(tree_copy, ("local",)).text()  # not regenerated
    assert "knative/base/services.yaml is out of date: run `make manifests`" in found
    assert "functions/canary/ has no Service canary" in found
    assert "Service auxip/prip: no function folder functions/prip/main.py" in found


def test_hand_edited_generated_file(tree_copy):
    generate.write(tree_copy)
    edit(tree_copy.base / "triggers.yaml", "name: notify\n", "name: publish\n")
    found = check.run(tree_copy, ("local",)).text()
    assert "knative/base/triggers.yaml is out of date" in found


def test_kind_without_model_or_schema(tree_copy):
    add_resource(tree_copy, "topic.yaml", "apiVersion: kafka.strimzi.io/v1beta2\nkind: KafkaTopic\n"
                                          "metadata: {name: t, namespace: auxip}\n")
    assert "KafkaTopic auxip/t: no model for kafka.strimzi.io/v1beta2 KafkaTopic and no schema" \
        in problems(tree_copy)


def test_kubernetes_kinds_are_checked_against_the_apis_schema(tree_copy):
    edit(tree_copy.overlay("local") / "namespace.yaml", "metadata:",
         "spec: {finalizers: kubernetes}\nmetadata:")
    add_resource(tree_copy, "job.yaml", """\
apiVersion: batch/v1
kind: Job
metadata: {name: j, namespace: auxip}
spec: {template: {spec: {containers: [{name: c, image: x, imagePullPolicy: Always, portz: []}]}}}
""")
    found = problems(tree_copy)
    assert "Namespace auxip: spec.finalizers: 'kubernetes' is not of type 'array'" in found
    assert "Job auxip/j: " in found and "portz" in found


def test_event_type_for_an_unknown_type(tree_copy):
    add_resource(tree_copy, "stray-type.yaml", """\
apiVersion: eventing.knative.dev/v1beta3
kind: EventType
metadata: {name: stray, namespace: auxip}
spec:
  reference: {apiVersion: eventing.knative.dev/v1, kind: Broker, name: nobroker}
  attributes: [{name: type, required: true, value: org.auxip.nothing.v1}]
""")
    found = problems(tree_copy)
    assert "EventType auxip/stray: spec.reference.ref: no Broker auxip/nobroker" in found
    assert "EventType for 'org.auxip.nothing.v1', which events/registry.py does not define" in found
