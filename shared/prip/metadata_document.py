"""What the service says about itself: the service document (`/odata/v1`) and the CSDL
schema (`/odata/v1/$metadata`), namespace OData.CSC as in the ESA interface documents."""

from __future__ import annotations

from shared.core.attributes import AttributeType
from shared.prip.conditional import strong_etag

NAMESPACE = "OData.CSC"
ENTITY_SETS = ("Products", "Subscriptions")

_EDM_OF = {
    AttributeType.STRING: "Edm.String",
    AttributeType.INTEGER: "Edm.Int64",
    AttributeType.DOUBLE: "Edm.Double",
    AttributeType.DATETIME: "Edm.DateTimeOffset",
    AttributeType.BOOLEAN: "Edm.Boolean",
}


def service_document() -> dict[str, object]:
    return {
        "@odata.context": "$metadata",
        "value": [{"name": name, "kind": "EntitySet", "url": name} for name in ENTITY_SETS],
    }


def _attribute_types() -> str:
    return "".join(
        f'<EntityType Name="{t.value}Attribute" BaseType="{NAMESPACE}.Attribute">'
        f'<Property Name="Value" Type="{_EDM_OF[t]}"/></EntityType>'
        for t in AttributeType
    )


# Dates carry Precision="3": what the JSON shows (milliseconds).
_DATE = 'Type="Edm.DateTimeOffset" Precision="3"'

CSDL = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">'
    "<edmx:DataServices>"
    f'<Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="{NAMESPACE}">'
    '<EntityType Name="Product" HasStream="true">'
    '<Key><PropertyRef Name="Id"/></Key>'
    '<Property Name="Id" Type="Edm.Guid" Nullable="false"/>'
    '<Property Name="Name" Type="Edm.String" Nullable="false"/>'
    '<Property Name="ContentType" Type="Edm.String" Nullable="false"/>'
    '<Property Name="ContentLength" Type="Edm.Int64" Nullable="false"/>'
    f'<Property Name="OriginDate" {_DATE} Nullable="false"/>'
    f'<Property Name="PublicationDate" {_DATE} Nullable="false"/>'
    f'<Property Name="ModificationDate" {_DATE} Nullable="false"/>'
    '<Property Name="Online" Type="Edm.Boolean" Nullable="false"/>'
    f'<Property Name="EvictionDate" {_DATE} Nullable="false"/>'
    f'<Property Name="Checksum" Type="Collection({NAMESPACE}.Checksum)" Nullable="false"/>'
    f'<Property Name="ContentDate" Type="{NAMESPACE}.TimeRange" Nullable="false"/>'
    f'<NavigationProperty Name="Attributes" Type="Collection({NAMESPACE}.Attribute)"'
    ' ContainsTarget="true"/>'
    f'<NavigationProperty Name="Assets" Type="Collection({NAMESPACE}.Asset)"'
    ' ContainsTarget="true"/>'
    "</EntityType>"
    '<ComplexType Name="TimeRange">'
    f'<Property Name="Start" {_DATE} Nullable="false"/>'
    f'<Property Name="End" {_DATE} Nullable="false"/>'
    "</ComplexType>"
    '<ComplexType Name="Checksum">'
    '<Property Name="Algorithm" Type="Edm.String" Nullable="false"/>'
    '<Property Name="Value" Type="Edm.String" Nullable="false"/>'
    f'<Property Name="ChecksumDate" {_DATE}/>'
    "</ComplexType>"
    '<EntityType Name="Attribute" Abstract="true">'
    '<Key><PropertyRef Name="Name"/></Key>'
    '<Property Name="Name" Type="Edm.String" Nullable="false"/>'
    '<Property Name="ValueType" Type="Edm.String" Nullable="false"/>'
    "</EntityType>"
    f"{_attribute_types()}"
    '<EntityType Name="Asset">'
    '<Key><PropertyRef Name="Id"/></Key>'
    '<Property Name="Id" Type="Edm.Guid" Nullable="false"/>'
    '<Property Name="Type" Type="Edm.String"/>'
    "</EntityType>"
    '<EnumType Name="SubscriptionStatus">'
    '<Member Name="running" Value="0"/><Member Name="paused" Value="1"/>'
    '<Member Name="cancelled" Value="2"/>'
    "</EnumType>"
    '<EnumType Name="SubscriptionEvent">'
    '<Member Name="created" Value="0"/><Member Name="deleted" Value="1"/>'
    "</EnumType>"
    '<EntityType Name="Subscription">'
    '<Key><PropertyRef Name="Id"/></Key>'
    '<Property Name="Id" Type="Edm.Guid" Nullable="false"/>'
    f'<Property Name="Status" Type="{NAMESPACE}.SubscriptionStatus" Nullable="false"/>'
    f'<Property Name="SubscriptionEvent" Type="{NAMESPACE}.SubscriptionEvent"'
    ' Nullable="false"/>'
    '<Property Name="FilterParam" Type="Edm.String" Nullable="false"/>'
    f'<Property Name="SubmissionDate" {_DATE} Nullable="false"/>'
    f'<Property Name="LastNotificationDate" {_DATE}/>'
    '<Property Name="NotificationEndpoint" Type="Edm.String" Nullable="false"/>'
    # Write-only: accepted on creation, never returned.
    '<Property Name="NotificationEpUsername" Type="Edm.String"/>'
    '<Property Name="NotificationEpPassword" Type="Edm.String"/>'
    "</EntityType>"
    '<ComplexType Name="Notification">'
    f'<Property Name="SubscriptionEvent" Type="{NAMESPACE}.SubscriptionEvent"'
    ' Nullable="false"/>'
    '<Property Name="ProductId" Type="Edm.Guid" Nullable="false"/>'
    '<Property Name="ProductName" Type="Edm.String" Nullable="false"/>'
    '<Property Name="SubscriptionId" Type="Edm.Guid" Nullable="false"/>'
    f'<Property Name="NotificationDate" {_DATE} Nullable="false"/>'
    "</ComplexType>"
    '<EntityContainer Name="Container">'
    f'<EntitySet Name="Products" EntityType="{NAMESPACE}.Product"/>'
    f'<EntitySet Name="Subscriptions" EntityType="{NAMESPACE}.Subscription"/>'
    "</EntityContainer>"
    "</Schema>"
    "</edmx:DataServices>"
    "</edmx:Edmx>"
)
CSDL_ETAG = strong_etag(CSDL.encode())  # changes when the schema does
